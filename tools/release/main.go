// Command release builds tokenbroker's release archives for every
// target, offline and reproducibly: the same commit gives the same bytes.
// Each binary is static (CGO off), built with -trimpath, stamped with the
// version and the commit, and packed with fixed times, owners and modes;
// SHA256SUMS lists every archive.
//
//	go run ./tools/release [-version v1.2.3] [-out dist] [-targets linux/amd64,...]
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// targets are the platforms a release ships for.
var targets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

func main() {
	version := flag.String("version", "", "the release's version (default: git describe)")
	out := flag.String("out", "dist", "where the archives and SHA256SUMS go")
	only := flag.String("targets", strings.Join(targets, ","), "comma-separated GOOS/GOARCH list")
	flag.Parse()
	if err := release(*version, *out, strings.Split(*only, ",")); err != nil {
		log.Fatal(err)
	}
}

func release(version, out string, targets []string) error {
	if version == "" {
		v, err := git("describe", "--tags", "--always", "--dirty")
		if err != nil {
			return fmt.Errorf("no -version and no git describe: %w", err)
		}
		version = v
	}
	// Every file in the archives gets the commit's time, so two builds of
	// one commit are byte for byte the same.
	when := time.Unix(0, 0).UTC()
	if ct, err := git("log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(ct, 10, 64); err == nil {
			when = time.Unix(sec, 0).UTC()
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		return err
	}
	var sums []string
	for _, t := range targets {
		goos, goarch, ok := strings.Cut(t, "/")
		if !ok {
			return fmt.Errorf("target %q: want GOOS/GOARCH", t)
		}
		bin, err := build(version, goos, goarch)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		name := fmt.Sprintf("tokenbroker_%s_%s_%s", strings.TrimPrefix(version, "v"), goos, goarch)
		exe := "tokenbroker"
		if goos == "windows" {
			exe += ".exe"
		}
		files := []file{{exe, bin, 0o755}, {"README.md", readme, 0o644}}
		var archive []byte
		if goos == "windows" {
			name += ".zip"
			archive, err = zipOf(name, files, when)
		} else {
			name += ".tar.gz"
			archive, err = tarGzOf(files, when)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), archive, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(archive)
		sums = append(sums, hex.EncodeToString(sum[:])+"  "+name)
		fmt.Printf("%s  %d bytes\n", name, len(archive))
	}
	sort.Strings(sums)
	return os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(strings.Join(sums, "\n")+"\n"), 0o644)
}

// build compiles the command for one target and returns the binary.
func build(version, goos, goarch string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "tokenbroker-release")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tokenbroker")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-ldflags", "-s -w -buildid= -X main.version="+version, "-o", bin, "./cmd/tokenbroker")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

type file struct {
	name string
	data []byte
	mode int64
}

func tarGzOf(files []file, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.ModTime = when
	tw := tar.NewWriter(gz)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: when, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
			Uname: "root", Gname: "root"}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func zipOf(_ string, files []file, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: when}
		h.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(w, bytes.NewReader(f.data)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	return strings.TrimSpace(string(out)), err
}
