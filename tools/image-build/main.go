// image-build writes container images without a container engine, reproducibly: the same spec and the
// same input files give the same image digest (fixed timestamps, sorted entries, owners from the spec,
// normalised modes). test/bin/build-images.sh drives it; the tests inspect and extract what it wrote.
//
//	image-build build SPEC.json OUT.tar   write the image as an OCI image layout tarball
//	image-build inspect IMAGE.tar         print its name, digests, config and merged file list (JSON)
//	image-build extract IMAGE.tar DIR     unpack its layers into DIR (owners kept when run as root)
//
// OUT.tar is an OCI image layout (oci-layout, index.json, blobs/sha256/...) whose index names the image
// with containerd's `io.containerd.image.name` annotation: `ctr images import` keeps the name and the
// manifest as written, so the digest containerd reports is the one this tool prints. (With a Docker
// manifest.json in the archive containerd 1.6 would write a manifest of its own, with another digest.)
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is the JSON input of `build`.
type Spec struct {
	// Name is the image reference the archive carries, e.g. "gcr.io/etcd-development/etcd:v3.6.16".
	Name   string      `json:"name"`
	Config ConfigSpec  `json:"config"`
	Layers []LayerSpec `json:"layers"`
}

// ConfigSpec is the part of the OCI image config a spec sets.
type ConfigSpec struct {
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	User       string            `json:"User,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// LayerSpec is one layer: its entries, and a comment that becomes the layer's history line.
type LayerSpec struct {
	Comment string  `json:"comment"`
	Entries []Entry `json:"entries"`
}

// Entry puts one thing at Path: a host file or directory tree (Source), an inline file (Content),
// an empty directory (Dir) or a symbolic link (Symlink).
type Entry struct {
	Path    string  `json:"path"`
	Source  string  `json:"source,omitempty"`
	Content *string `json:"content,omitempty"`
	Dir     bool    `json:"dir,omitempty"`
	Symlink string  `json:"symlink,omitempty"`
	// Mode (octal, e.g. "0755", "1777") of the entry at Path. Without it a directory is 0755 and a file
	// 0755 when any execute bit is set on the host, else 0644; files and directories below a Source
	// directory always follow that rule, so host umasks and checkouts do not change the digest.
	Mode string `json:"mode,omitempty"`
	// Owner "uid:gid" of everything the entry adds (default "0:0").
	Owner string `json:"owner,omitempty"`
}

// fileEntry is one tar entry of a layer, before it is written.
type fileEntry struct {
	name     string // relative to the root, no leading slash
	typeflag byte
	mode     int64
	uid, gid int
	source   string // host file of a regular file
	content  []byte // inline content of a regular file
	size     int64
	linkname string
	implicit bool // a parent directory no entry named
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "image-build: %v\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	const usage = "usage: image-build build SPEC.json OUT.tar | inspect IMAGE.tar | extract IMAGE.tar DIR"
	if len(args) == 0 {
		return usageError{usage}
	}
	switch {
	case args[0] == "build" && len(args) == 3:
		return build(args[1], args[2])
	case args[0] == "inspect" && len(args) == 2:
		return inspect(args[1])
	case args[0] == "extract" && len(args) == 3:
		return extract(args[1], args[2])
	default:
		return usageError{usage}
	}
}

// epoch is the time every entry and the config carry: SOURCE_DATE_EPOCH (the reproducible-builds
// convention) when set, else 1970-01-01.
func epoch() (time.Time, error) {
	value := os.Getenv("SOURCE_DATE_EPOCH")
	if value == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", value, err)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

// Result is what `build` prints.
type Result struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Digest string `json:"digest"`
	ID     string `json:"id"`
	Size   int64  `json:"size"`
}

func build(specPath, out string) error {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec Spec
	decoder := json.NewDecoder(strings.NewReader(string(raw)))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&spec); err != nil {
		return fmt.Errorf("spec %s: %w", specPath, err)
	}
	if len(spec.Layers) == 0 {
		return fmt.Errorf("spec %s: at least one layer is required", specPath)
	}
	// A full reference with a tag: containerd names the imported image by it, and the tag goes in the index.
	tag, err := name.NewTag(spec.Name, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("spec %s: name %q is not a repository:tag reference: %w", specPath, spec.Name, err)
	}
	created, err := epoch()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(out), ".image-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: spec.Config.Entrypoint,
			Cmd:        spec.Config.Cmd,
			Env:        spec.Config.Env,
			User:       spec.Config.User,
			WorkingDir: spec.Config.WorkingDir,
			Labels:     spec.Config.Labels,
		},
	})
	if err != nil {
		return err
	}
	img := mutate.MediaType(base, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, layerSpec := range spec.Layers {
		file := filepath.Join(work, fmt.Sprintf("layer-%d.tar.gz", i))
		if err := writeLayer(layerSpec, file, created); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, layerSpec.Comment, err)
		}
		layer, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, layerSpec.Comment, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: layerSpec.Comment, Comment: "image-build"},
		})
		if err != nil {
			return err
		}
	}
	size, err := writeLayout(img, spec.Name, tag.TagStr(), out)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(Result{Name: spec.Name, File: abs, Digest: digest.String(), ID: id.String(), Size: size})
}

func parseMode(text string) (int64, error) {
	mode, err := strconv.ParseInt(text, 8, 64)
	if err != nil || mode < 0 || mode > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal permission (e.g. 0755)", text)
	}
	return mode, nil
}

func parseOwner(text string) (int, int, error) {
	if text == "" {
		return 0, 0, nil
	}
	uid, gid, ok := strings.Cut(text, ":")
	u, errU := strconv.Atoi(uid)
	g, errG := strconv.Atoi(gid)
	if !ok || errU != nil || errG != nil || u < 0 || g < 0 {
		return 0, 0, fmt.Errorf("owner %q is not uid:gid", text)
	}
	return u, g, nil
}

// cleanPath turns an absolute image path into a tar name; "/" becomes ".".
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must be absolute", p)
	}
	cleaned := strings.TrimPrefix(path.Clean(p), "/")
	if cleaned == "" {
		return ".", nil
	}
	return cleaned, nil
}

func defaultMode(info fs.FileInfo) int64 {
	if info.IsDir() || info.Mode().Perm()&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// collect turns the layer's entries into tar entries by name.
func collect(spec LayerSpec) (map[string]*fileEntry, error) {
	entries := map[string]*fileEntry{}
	add := func(e *fileEntry) error {
		if previous, ok := entries[e.name]; ok && !previous.implicit {
			// Two trees may share a directory (both add /usr, say) if they agree on what it is.
			sameDir := previous.typeflag == tar.TypeDir && e.typeflag == tar.TypeDir &&
				(e.implicit || (previous.mode == e.mode && previous.uid == e.uid && previous.gid == e.gid))
			if !sameDir {
				return fmt.Errorf("/%s is added twice", e.name)
			}
			return nil
		}
		entries[e.name] = e
		// Every parent exists as a directory entry (root-owned, 0755 unless an entry names it).
		for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = &fileEntry{name: dir, typeflag: tar.TypeDir, mode: 0o755, implicit: true}
			}
		}
		return nil
	}
	for _, entry := range spec.Entries {
		name, err := cleanPath(entry.Path)
		if err != nil {
			return nil, err
		}
		uid, gid, err := parseOwner(entry.Owner)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entry.Path, err)
		}
		var mode int64 = -1
		if entry.Mode != "" {
			if mode, err = parseMode(entry.Mode); err != nil {
				return nil, fmt.Errorf("%s: %w", entry.Path, err)
			}
		}
		kinds := 0
		for _, set := range []bool{entry.Source != "", entry.Content != nil, entry.Dir, entry.Symlink != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return nil, fmt.Errorf("%s: exactly one of source, content, dir and symlink is required", entry.Path)
		}
		withMode := func(fallback int64) int64 {
			if mode >= 0 {
				return mode
			}
			return fallback
		}
		switch {
		case entry.Content != nil:
			content := []byte(*entry.Content)
			err = add(&fileEntry{name: name, typeflag: tar.TypeReg, mode: withMode(0o644), uid: uid, gid: gid, content: content, size: int64(len(content))})
		case entry.Dir:
			err = add(&fileEntry{name: name, typeflag: tar.TypeDir, mode: withMode(0o755), uid: uid, gid: gid})
		case entry.Symlink != "":
			err = add(&fileEntry{name: name, typeflag: tar.TypeSymlink, mode: 0o777, uid: uid, gid: gid, linkname: entry.Symlink})
		default:
			err = addSource(entry.Source, name, withMode, uid, gid, add)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entry.Path, err)
		}
	}
	return entries, nil
}

// addSource adds a host file, symlink or directory tree at name.
func addSource(source, name string, withMode func(int64) int64, uid, gid int, add func(*fileEntry) error) error {
	top, err := os.Lstat(source)
	if err != nil {
		return err
	}
	if !top.IsDir() {
		return addHostFile(source, name, top, withMode(defaultMode(top)), uid, gid, add)
	}
	return filepath.WalkDir(source, func(p string, d fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			return walkErr
		}
		rel, err := filepath.Rel(source, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := path.Join(name, filepath.ToSlash(rel))
		if rel == "." {
			if name == "." {
				return nil // the root directory itself is never an entry
			}
			return add(&fileEntry{name: name, typeflag: tar.TypeDir, mode: withMode(0o755), uid: uid, gid: gid})
		}
		return addHostFile(p, target, info, defaultMode(info), uid, gid, add)
	})
}

func addHostFile(p, name string, info fs.FileInfo, mode int64, uid, gid int, add func(*fileEntry) error) error {
	switch {
	case info.Mode().IsRegular():
		return add(&fileEntry{name: name, typeflag: tar.TypeReg, mode: mode, uid: uid, gid: gid, source: p, size: info.Size()})
	case info.IsDir():
		return add(&fileEntry{name: name, typeflag: tar.TypeDir, mode: mode, uid: uid, gid: gid})
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		return add(&fileEntry{name: name, typeflag: tar.TypeSymlink, mode: 0o777, uid: uid, gid: gid, linkname: target})
	default:
		return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
	}
}

// writeLayer writes the layer as a gzip-compressed tar with sorted entries and fixed times.
func writeLayer(spec LayerSpec, out string, mtime time.Time) (err error) {
	entries, err := collect(spec)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	// Plain byte order puts every parent before its children ("a" < "a-b" < "a/b").
	sort.Strings(names)
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := file.Close(); err == nil {
			err = closeErr
		}
	}()
	compressed, err := gzip.NewWriterLevel(file, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	archive := tar.NewWriter(compressed)
	for _, name := range names {
		e := entries[name]
		header := &tar.Header{
			Name:     name,
			Typeflag: e.typeflag,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  mtime,
			Linkname: e.linkname,
		}
		if e.typeflag == tar.TypeDir {
			header.Name += "/"
		}
		if e.typeflag == tar.TypeReg {
			header.Size = e.size
		}
		if err := archive.WriteHeader(header); err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		if e.typeflag != tar.TypeReg {
			continue
		}
		if e.source == "" {
			if _, err := archive.Write(e.content); err != nil {
				return err
			}
			continue
		}
		if err := copyHostFile(archive, e); err != nil {
			return err
		}
	}
	if err := archive.Close(); err != nil {
		return err
	}
	return compressed.Close()
}

func copyHostFile(w io.Writer, e *fileEntry) error {
	in, err := os.Open(e.source)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(w, io.LimitReader(in, e.size+1))
	if err != nil {
		return fmt.Errorf("%s: %w", e.source, err)
	}
	if n != e.size {
		return fmt.Errorf("%s changed while the image was built (%d bytes, then %d)", e.source, e.size, n)
	}
	return nil
}

// writeLayout writes img as an OCI image layout tarball and returns its size.
func writeLayout(img v1.Image, imageName, tag, out string) (size int64, err error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	digest, err := img.Digest()
	if err != nil {
		return 0, err
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Platform:  &v1.Platform{Architecture: "amd64", OS: "linux"},
			// containerd's name annotation carries the whole reference; the OCI one, the tag (as
			// `docker save` writes them).
			Annotations: map[string]string{"io.containerd.image.name": imageName, "org.opencontainers.image.ref.name": tag},
		}},
	})
	if err != nil {
		return 0, err
	}
	tmp := out + ".tmp"
	file, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			file.Close()
			os.Remove(tmp)
		}
	}()
	archive := tar.NewWriter(file)
	epochTime := time.Unix(0, 0).UTC()
	writeBytes := func(entry string, data []byte) error {
		if err := archive.WriteHeader(&tar.Header{Name: entry, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epochTime}); err != nil {
			return err
		}
		_, err := archive.Write(data)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := archive.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epochTime}); err != nil {
			return 0, err
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	seen := map[v1.Hash]bool{}
	for _, layer := range layers {
		layerDigest, err := layer.Digest()
		if err != nil {
			return 0, err
		}
		if seen[layerDigest] {
			continue
		}
		seen[layerDigest] = true
		layerSize, err := layer.Size()
		if err != nil {
			return 0, err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return 0, err
		}
		err = archive.WriteHeader(&tar.Header{Name: "blobs/sha256/" + layerDigest.Hex, Typeflag: tar.TypeReg, Mode: 0o644, Size: layerSize, ModTime: epochTime})
		if err == nil {
			_, err = io.Copy(archive, rc)
		}
		rc.Close()
		if err != nil {
			return 0, err
		}
	}
	configName, err := img.ConfigName()
	if err != nil {
		return 0, err
	}
	for _, blob := range []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/" + configName.Hex, config},
		{"blobs/sha256/" + digest.Hex, manifest},
		{"index.json", index},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	} {
		if err := writeBytes(blob.name, blob.data); err != nil {
			return 0, err
		}
	}
	if err := archive.Close(); err != nil {
		return 0, err
	}
	if err := file.Sync(); err != nil {
		return 0, err
	}
	info, err := file.Stat()
	if err != nil {
		return 0, err
	}
	if err := file.Close(); err != nil {
		return 0, err
	}
	return info.Size(), os.Rename(tmp, out)
}

// layout is an OCI layout tarball read back: its small blobs (index, manifest, config) in memory.
type layout struct {
	file     string
	index    v1.IndexManifest
	manifest v1.Manifest
	config   v1.ConfigFile
	digest   v1.Hash
}

// readLayout reads the tarball's index, manifest and config and checks that every blob has the
// digest it is named by.
func readLayout(file string) (*layout, error) {
	in, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	small := map[string][]byte{}
	archive := tar.NewReader(in)
	for {
		header, err := archive.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if header.Typeflag != tar.TypeReg {
			continue
		}
		hash := sha256.New()
		var keep strings.Builder
		var w io.Writer = hash
		if header.Size <= 1<<20 {
			w = io.MultiWriter(hash, &keep)
		}
		if _, err := io.Copy(w, archive); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, header.Name, err)
		}
		if hexDigest, ok := strings.CutPrefix(header.Name, "blobs/sha256/"); ok && hex.EncodeToString(hash.Sum(nil)) != hexDigest {
			return nil, fmt.Errorf("%s: blob %s does not match its digest", file, header.Name)
		}
		if header.Size <= 1<<20 {
			small[header.Name] = []byte(keep.String())
		}
	}
	l := &layout{file: file}
	indexJSON, ok := small["index.json"]
	if !ok {
		return nil, fmt.Errorf("%s: no index.json (not an OCI image layout)", file)
	}
	if err := json.Unmarshal(indexJSON, &l.index); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", file, err)
	}
	if len(l.index.Manifests) != 1 {
		return nil, fmt.Errorf("%s: index.json lists %d manifests, want 1", file, len(l.index.Manifests))
	}
	l.digest = l.index.Manifests[0].Digest
	manifestJSON, ok := small["blobs/sha256/"+l.digest.Hex]
	if !ok {
		return nil, fmt.Errorf("%s: manifest %s missing", file, l.digest)
	}
	if err := json.Unmarshal(manifestJSON, &l.manifest); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", file, err)
	}
	configJSON, ok := small["blobs/sha256/"+l.manifest.Config.Digest.Hex]
	if !ok {
		return nil, fmt.Errorf("%s: config %s missing", file, l.manifest.Config.Digest)
	}
	if err := json.Unmarshal(configJSON, &l.config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", file, err)
	}
	return l, nil
}

// eachLayerEntry calls fn for every entry of every layer, in order, with the entry's content reader.
func (l *layout) eachLayerEntry(fn func(header *tar.Header, content io.Reader) error) error {
	for _, descriptor := range l.manifest.Layers {
		if err := l.eachEntryOf(descriptor, fn); err != nil {
			return fmt.Errorf("%s: layer %s: %w", l.file, descriptor.Digest, err)
		}
	}
	return nil
}

func (l *layout) eachEntryOf(descriptor v1.Descriptor, fn func(*tar.Header, io.Reader) error) error {
	in, err := os.Open(l.file)
	if err != nil {
		return err
	}
	defer in.Close()
	outer := tar.NewReader(in)
	for {
		header, err := outer.Next()
		if err == io.EOF {
			return errors.New("blob missing")
		}
		if err != nil {
			return err
		}
		if header.Name != "blobs/sha256/"+descriptor.Digest.Hex {
			continue
		}
		var layerReader io.Reader = outer
		if descriptor.MediaType == types.OCILayer || descriptor.MediaType == types.DockerLayer {
			unzipped, err := gzip.NewReader(outer)
			if err != nil {
				return err
			}
			defer unzipped.Close()
			layerReader = unzipped
		}
		inner := tar.NewReader(layerReader)
		for {
			header, err := inner.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			base := path.Base(header.Name)
			if strings.HasPrefix(base, ".wh.") {
				return fmt.Errorf("%s: whiteouts are not supported", header.Name)
			}
			if err := fn(header, inner); err != nil {
				return fmt.Errorf("%s: %w", header.Name, err)
			}
		}
	}
}

// FileInfo is one path of the image's merged file system.
type FileInfo struct {
	Path string `json:"path"`
	// Type is "file", "dir", "symlink" or "hardlink".
	Type string `json:"type"`
	Mode int64  `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	Size int64  `json:"size"`
	Link string `json:"link,omitempty"`
}

// Inspection is what `inspect` prints.
type Inspection struct {
	Names  []string   `json:"names"`
	Digest string     `json:"digest"`
	ID     string     `json:"id"`
	Config v1.Config  `json:"config"`
	Layers []string   `json:"layers"`
	Files  []FileInfo `json:"files"`
}

func entryName(header *tar.Header) string {
	return "/" + strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+header.Name), "/"), "/")
}

func inspect(file string) error {
	l, err := readLayout(file)
	if err != nil {
		return err
	}
	result := Inspection{Digest: l.digest.String(), ID: l.manifest.Config.Digest.String(), Config: l.config.Config}
	for _, descriptor := range l.index.Manifests {
		if name := descriptor.Annotations["io.containerd.image.name"]; name != "" {
			result.Names = append(result.Names, name)
		}
	}
	for _, descriptor := range l.manifest.Layers {
		result.Layers = append(result.Layers, descriptor.Digest.String())
	}
	files := map[string]FileInfo{}
	err = l.eachLayerEntry(func(header *tar.Header, _ io.Reader) error {
		info := FileInfo{Path: entryName(header), Mode: header.Mode & 0o7777, UID: header.Uid, GID: header.Gid, Size: header.Size, Link: header.Linkname}
		switch header.Typeflag {
		case tar.TypeReg:
			info.Type = "file"
		case tar.TypeDir:
			info.Type = "dir"
		case tar.TypeSymlink:
			info.Type = "symlink"
		case tar.TypeLink:
			info.Type = "hardlink"
		default:
			return fmt.Errorf("unsupported entry type %q", header.Typeflag)
		}
		files[info.Path] = info
		return nil
	})
	if err != nil {
		return err
	}
	for _, info := range files {
		result.Files = append(result.Files, info)
	}
	sort.Slice(result.Files, func(i, j int) bool { return result.Files[i].Path < result.Files[j].Path })
	return json.NewEncoder(os.Stdout).Encode(result)
}

// extract unpacks the layers into dir, which must be empty or absent. Entries must stay inside dir:
// names are cleaned, and nothing is written through a symbolic link.
func extract(file, dir string) error {
	l, err := readLayout(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	asRoot := os.Geteuid() == 0
	type dirMode struct {
		name string
		mode os.FileMode
	}
	var dirs []dirMode
	err = l.eachLayerEntry(func(header *tar.Header, content io.Reader) error {
		name := strings.TrimPrefix(entryName(header), "/")
		if name == "" {
			return nil
		}
		// A later layer replaces what an earlier one put at the same path (never a directory's contents).
		if info, err := root.Lstat(name); err == nil && !(info.IsDir() && header.Typeflag == tar.TypeDir) {
			if err := root.Remove(name); err != nil {
				return err
			}
		}
		switch header.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return err
			}
			// Applied last: a read-only directory must still receive its entries.
			dirs = append(dirs, dirMode{name, fileMode(header.Mode)})
		case tar.TypeReg:
			out, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, content); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
			if err := root.Chmod(name, fileMode(header.Mode)); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(header.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := root.Link(strings.TrimPrefix(path.Clean("/"+header.Linkname), "/"), name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported entry type %q", header.Typeflag)
		}
		if asRoot {
			return root.Lchown(name, header.Uid, header.Gid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// Skip a directory a later layer replaced (e.g. by a symbolic link, which Chmod would follow).
		if info, err := root.Lstat(dirs[i].name); err != nil || !info.IsDir() {
			continue
		}
		if err := root.Chmod(dirs[i].name, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

// fileMode translates a tar mode's permission, setuid, setgid and sticky bits into an os.FileMode.
func fileMode(mode int64) os.FileMode {
	result := os.FileMode(mode & 0o777)
	for bit, flag := range map[int64]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky} {
		if mode&bit != 0 {
			result |= flag
		}
	}
	return result
}
