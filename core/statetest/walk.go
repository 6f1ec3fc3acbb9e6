package statetest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// IsArchive reports whether path names a gzip'd tar of fixtures.
func IsArchive(path string) bool {
	return strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tgz")
}

// CheckPaths returns an error for the first path that is missing or unreadable.
func CheckPaths(paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("no fixture path given")
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if _, err := os.ReadDir(p); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// Walk calls fn with every fixture file under paths, in order: a .json file
// itself, the *.json files of a directory (recursively, in lexical order) and
// the *.json files of a .tar.gz archive (streamed, in archive order). name is
// the file's path, inside the archive for archive members; body reads the file
// and is valid only during the call. Walk stops at fn's first error. An
// unreadable directory entry or a corrupt archive is reported to fn as a body
// error (so a bad input shows as one failed file, not an aborted run); only a
// path that cannot be opened at all, or a cancelled ctx, ends Walk with an
// error.
func Walk(ctx context.Context, paths []string, fn func(name string, body func() ([]byte, error)) error) error {
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			var files []string
			walkErr := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					// Report the unreadable entry and go on.
					return fn(path, func() ([]byte, error) { return nil, err })
				}
				if !d.IsDir() && strings.HasSuffix(path, ".json") {
					files = append(files, path)
				}
				return nil
			})
			if walkErr != nil {
				return walkErr
			}
			sort.Strings(files)
			for _, f := range files {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(f, func() ([]byte, error) { return os.ReadFile(f) }); err != nil {
					return err
				}
			}
		case IsArchive(p):
			if err := walkArchive(ctx, p, fn); err != nil {
				return err
			}
		default:
			if err := fn(p, func() ([]byte, error) { return os.ReadFile(p) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func walkArchive(ctx context.Context, path string, fn func(name string, body func() ([]byte, error)) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fn(path, func() ([]byte, error) { return nil, fmt.Errorf("read archive: %w", err) })
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fn(path, func() ([]byte, error) { return nil, fmt.Errorf("read archive: %w", err) })
		}
		if hdr.Typeflag != tar.TypeReg || !strings.HasSuffix(hdr.Name, ".json") {
			continue
		}
		if err := fn(hdr.Name, func() ([]byte, error) { return io.ReadAll(tr) }); err != nil {
			return err
		}
	}
}

// Group is the post entries of one test and fork, or (Err set) a fixture file
// or test that could not be read or decoded.
type Group struct {
	File, Name, Fork string
	Test             *Test
	Posts            []*PostEntry
	Err              error
}

// ForEach reads the fixtures under paths and calls fn, from workers goroutines
// (GOMAXPROCS when workers <= 0), for every test and selected fork; the files
// are decoded by the workers too. selectFile, if not nil, is called (from one
// goroutine, in walk order) with every fixture file's name and picks the files
// to decode. forks are matched case-insensitively with the fixtures' fork
// names; with none, every fork runs. Files and tests that cannot be decoded
// come to fn as a Group with Err set.
func ForEach(ctx context.Context, paths []string, forks []string, workers int, selectFile func(name string) bool, fn func(*Group)) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type file struct {
		name string
		raw  []byte
		err  error
	}
	files := make(chan file, 2*workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range files {
				if ctx.Err() != nil {
					continue
				}
				if f.err != nil {
					fn(&Group{File: f.name, Err: f.err})
					continue
				}
				groups(f.name, f.raw, forks, fn)
			}
		}()
	}
	err := Walk(ctx, paths, func(name string, body func() ([]byte, error)) error {
		if selectFile != nil && !selectFile(name) {
			return nil
		}
		raw, err := body()
		select {
		case files <- file{name: name, raw: raw, err: err}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(files)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// groups decodes a fixture file and calls fn for each test and selected fork.
func groups(name string, raw []byte, forks []string, fn func(*Group)) {
	tests, err := ParseFile(raw)
	if err != nil {
		fn(&Group{File: name, Err: err})
		return
	}
	names := make([]string, 0, len(tests))
	for n := range tests {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := tests[n]
		for _, fork := range t.Forks() {
			if !forkSelected(fork, forks) {
				continue
			}
			posts, err := t.PostEntries(fork)
			fn(&Group{File: name, Name: n, Fork: fork, Test: t, Posts: posts, Err: err})
		}
	}
}

func forkSelected(fork string, forks []string) bool {
	if len(forks) == 0 {
		return true
	}
	for _, f := range forks {
		if strings.EqualFold(f, fork) {
			return true
		}
	}
	return false
}
