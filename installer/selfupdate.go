package installer

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/minio/selfupdate"

	"github.com/NationTech/harmony-agent/internal/hint"
)

var (
	// ErrRollback means the newest release a mirror offers is older than the running harmony.
	ErrRollback = errors.New("the mirror's newest release is older than this harmony")
	// ErrDowngrade means the asked-for version is older than the running one and the user has
	// not confirmed it.
	ErrDowngrade = errors.New("downgrade not confirmed")
	// ErrManaged means a package manager owns the binary: it upgrades it, not harmony.
	ErrManaged = errors.New("harmony is managed by a package manager")
	// ErrNotWritable means the binary's folder cannot be written by this user.
	ErrNotWritable = errors.New("cannot replace the harmony binary")
	// ErrBrokenUpdate means the new binary did not run or reported another version or platform.
	ErrBrokenUpdate = errors.New("the new harmony binary failed its check")
)

// Bounds of what self-update reads: the release archive (as install.sh bounds it) and the binary
// inside it.
const (
	maxArchiveSize = 128 << 20
	maxBinarySize  = 512 << 20
)

// SelfUpdate replaces a harmony binary with a verified release.
type SelfUpdate struct {
	Fetcher  *Fetcher
	Verifier *Verifier
	// Mirror is the base URL of the release tree (see Mirror).
	Mirror string
	// Exe is the binary to replace (the running one, links resolved).
	Exe string
	// Current is its version ("dev" for a development build).
	Current string
	// Root is where package databases are looked up ("" means "/"); tests use a temporary root.
	Root string
	// CheckTimeout bounds each run of the new binary's version check.
	CheckTimeout time.Duration
}

// UpdateCheck is what Check found.
type UpdateCheck struct {
	Current string `json:"current"`
	Target  string `json:"target"`
	// Newer is true when Target is newer than Current.
	Newer bool `json:"updateAvailable"`
	// Downgrade is true when Target is older than Current (only when asked for by version).
	Downgrade bool   `json:"downgrade"`
	Archive   string `json:"archive"`
	// ManagedBy names the package manager that owns the binary, with its upgrade command.
	ManagedBy      string `json:"managedBy,omitempty"`
	UpgradeCommand string `json:"upgradeCommand,omitempty"`
	// Note explains a check that found nothing to do for a reason worth saying.
	Note string `json:"note,omitempty"`
	// Stale warns that the release the mirror offers as the newest is past the date its
	// signature vouched for that (or names none): the mirror may be frozen on an old release.
	Stale string `json:"stale,omitempty"`

	release Release
	digest  string
}

// Check finds the release to move to: the newest stable release, or version when given.
func (s *SelfUpdate) Check(ctx context.Context, version string) (UpdateCheck, error) {
	tag := "latest"
	if version != "" {
		v, err := semver.NewVersion(version)
		if err != nil {
			return UpdateCheck{}, hint.With(fmt.Errorf("--version %q is not a version", version), "give a release version, e.g. --version v1.4.0")
		}
		tag = "v" + v.String()
	}
	rel, err := s.Fetcher.FetchRelease(ctx, s.Mirror, tag, s.Verifier)
	if err != nil {
		return UpdateCheck{}, explainRelease(err, s.Mirror)
	}
	name, digest, err := rel.Archive()
	if err != nil {
		return UpdateCheck{}, err
	}
	c := UpdateCheck{Current: s.Current, Target: rel.Version.String(), Archive: name, release: rel, digest: digest}
	if version == "" {
		c.Stale = rel.StaleNewest(time.Now(), s.Mirror)
	}
	c.ManagedBy, c.UpgradeCommand = ManagedBy(s.Root, s.Exe)
	cur, curErr := semver.StrictNewVersion(strings.TrimPrefix(s.Current, "v"))
	switch {
	case curErr != nil && version == "":
		return c, hint.With(fmt.Errorf("this harmony is a development build (%s): it cannot tell which release is newer", s.Current),
			"name the release to install: harmony self-update --version v"+rel.Version.String())
	case curErr != nil:
		c.Newer = true // asked for explicitly
	case rel.Version.GreaterThan(cur):
		if version == "" && rel.Version.Prerelease() != "" {
			c.Note = "the newest release v" + rel.Version.String() + " is a pre-release: install it with --version v" + rel.Version.String()
			c.Target = s.Current
			return c, nil
		}
		c.Newer = true
	case rel.Version.LessThan(cur):
		if version == "" {
			if cur.Prerelease() != "" {
				c.Target, c.Note = s.Current, "this pre-release is newer than the newest stable release"
				return c, nil
			}
			return c, hint.With(fmt.Errorf("%w: the newest release on %s is v%s, this harmony is v%s; nothing changed",
				ErrRollback, s.Mirror, rel.Version, cur),
				"a mirror serving an old release as the newest is stale or is trying to roll you back: check HARMONY_MIRROR")
		}
		c.Downgrade = true
	}
	return c, nil
}

func explainRelease(err error, mirror string) error {
	switch {
	case errors.Is(err, ErrBadSignature):
		return hint.With(err, "the release files on "+mirror+" are not signed by a key this harmony trusts: do not install them; if you use HARMONY_MIRROR, check the mirror")
	case errors.Is(err, ErrVersionMismatch):
		return hint.With(err, "the mirror serves another release's signed files under this version: check HARMONY_MIRROR")
	}
	return err
}

// Apply downloads and verifies c's archive, checks that its binary runs and reports the expected
// version and platform, then atomically replaces s.Exe with it. Any failure leaves s.Exe as it was.
func (s *SelfUpdate) Apply(ctx context.Context, c UpdateCheck) error {
	if c.ManagedBy != "" {
		return hint.With(fmt.Errorf("%w: %s installed %q", ErrManaged, c.ManagedBy, s.Exe), "upgrade it with: "+c.UpgradeCommand)
	}
	if err := checkWritable(s.Exe); err != nil {
		return err
	}
	res, err := s.Fetcher.Fetch(ctx, Artifact{
		Name:   fmt.Sprintf("harmony v%s (%s/%s)", c.release.Version, runtime.GOOS, runtime.GOARCH),
		URL:    ReleaseURL(s.Mirror, ReleaseRepo, c.release.Tag(), c.Archive),
		SHA256: c.digest,
		// checksums.txt pins no size: a release archive is bounded as install.sh bounds it.
		MaxSize: maxArchiveSize,
	})
	if err != nil {
		return err
	}
	bin, err := binaryFromArchive(res.Path, c.Archive)
	if err != nil {
		return err
	}
	st, err := os.Stat(s.Exe)
	if err != nil {
		return fmt.Errorf("self-update: %w", err)
	}
	opts := selfupdate.Options{TargetPath: s.Exe, TargetMode: st.Mode().Perm() | 0o111}
	if err := selfupdate.PrepareAndCheckBinary(bytes.NewReader(bin), opts); err != nil {
		return fmt.Errorf("self-update: write the new binary beside %q: %w", s.Exe, err)
	}
	dir, base := filepath.Dir(s.Exe), filepath.Base(s.Exe)
	staged := filepath.Join(dir, "."+base+".new")
	if err := s.verifyBinary(ctx, staged, c.release.Version); err != nil {
		_ = os.Remove(staged)
		return err
	}
	opts.OldSavePath = filepath.Join(dir, "."+base+".old")
	if err := selfupdate.CommitBinary(opts); err != nil {
		_ = os.Remove(staged)
		if rerr := selfupdate.RollbackError(err); rerr != nil {
			return hint.With(fmt.Errorf("self-update: replace %q: %w; restoring the old binary also failed: %v", s.Exe, err, rerr),
				"the previous harmony is at "+opts.OldSavePath+": move it back to "+s.Exe)
		}
		return fmt.Errorf("self-update: replace %q: %w (the old binary is unchanged)", s.Exe, err)
	}
	if err := s.verifyBinary(ctx, s.Exe, c.release.Version); err != nil {
		if rerr := os.Rename(opts.OldSavePath, s.Exe); rerr != nil {
			return hint.With(fmt.Errorf("%w; restoring the old binary failed: %v", err, rerr),
				"the previous harmony is at "+opts.OldSavePath+": move it back to "+s.Exe)
		}
		return fmt.Errorf("%w (rolled back to v%s)", err, strings.TrimPrefix(s.Current, "v"))
	}
	if runtime.GOOS != "windows" { // Windows cannot delete a running executable; the next update does
		_ = os.Remove(opts.OldSavePath)
	}
	return nil
}

// verifyBinary runs exe's version check and requires version on this platform.
func (s *SelfUpdate) verifyBinary(ctx context.Context, exe string, version *semver.Version) error {
	timeout := s.CheckTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "version", "-o", "json")
	cmd.Env = append(os.Environ(), "HARMONY_NO_UPDATE_CHECK=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return hint.With(fmt.Errorf("%w: the new harmony v%s does not run here (%v): %s; nothing changed",
			ErrBrokenUpdate, version, err, strings.TrimSpace(stderr.String())), "report it; your current harmony keeps working")
	}
	var info struct{ Version, OS, Arch string }
	if err := json.Unmarshal(out, &info); err != nil {
		return hint.With(fmt.Errorf("%w: the new harmony v%s printed no version report: %v; nothing changed", ErrBrokenUpdate, version, err),
			"report it; your current harmony keeps working")
	}
	if strings.TrimPrefix(info.Version, "v") != version.String() || info.OS != runtime.GOOS || info.Arch != runtime.GOARCH {
		return hint.With(fmt.Errorf("%w: expected v%s for %s/%s, it reports %s for %s/%s; nothing changed",
			ErrBrokenUpdate, version, runtime.GOOS, runtime.GOARCH, info.Version, info.OS, info.Arch),
			"the release is mislabelled: report it; your current harmony keeps working")
	}
	return nil
}

// checkWritable tells whether the binary's folder lets this user replace the binary.
func checkWritable(exe string) error {
	dir := filepath.Dir(exe)
	f, err := os.CreateTemp(dir, ".harmony-write-check-*")
	if err == nil {
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
	h := "reinstall into a folder you own (install.sh with HARMONY_INSTALL_DIR=$HOME/.local/bin)"
	if runtime.GOOS != "windows" {
		h = "run it as the folder's owner: sudo harmony self-update; or " + h
	}
	return hint.With(fmt.Errorf("%w: %q is not writable by you: %w", ErrNotWritable, dir, err), h)
}

// binaryFromArchive reads the harmony binary at the top of a verified release archive.
func binaryFromArchive(path, name string) ([]byte, error) {
	want := "harmony"
	if strings.HasSuffix(name, ".zip") {
		want = "harmony.exe"
		z, err := zip.OpenReader(path)
		if err != nil {
			return nil, fmt.Errorf("open %q: %w", name, err)
		}
		defer z.Close()
		for _, f := range z.File {
			if f.Name != want || !f.Mode().IsRegular() {
				continue
			}
			r, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("open %q in %q: %w", want, name, err)
			}
			defer r.Close()
			return readBounded(r, name)
		}
		return nil, fmt.Errorf("%q has no %q", name, want)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", name, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", name, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%q has no %q", name, want)
		}
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == want && h.Typeflag == tar.TypeReg {
			return readBounded(tr, name)
		}
	}
}

func readBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBinarySize+1))
	if err != nil {
		return nil, fmt.Errorf("read the binary in %q: %w", name, err)
	}
	if len(b) > maxBinarySize {
		return nil, fmt.Errorf("the binary in %q is larger than %d MiB", name, maxBinarySize>>20)
	}
	return b, nil
}
