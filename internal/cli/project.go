package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// selection turns the [DIR] argument of launch, status or down into what launch.Resolve
// takes. A file is accepted: launch takes it as the manifests (like -f), status and down the
// project it is in. A path that does not exist is a usage error whose hint names the command
// that was run.
func selection(command, path string, files []string, ns string) (launch.Selection, error) {
	sel := launch.Selection{Dir: path, Manifests: files, Namespace: ns, Command: command}
	if path == "" {
		return sel, nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sel, &usageError{hint.With(fmt.Errorf("%q does not exist", path),
			fmt.Sprintf("name a folder or file of the project, or cd into the project and run harmony %s there without naming one", command))}
	case err != nil || st.IsDir():
		return sel, nil // Resolve says what is wrong with it
	case command != "launch":
		sel.Dir = filepath.Dir(path)
	case len(files) > 0:
		return sel, &usageError{fmt.Errorf("%q is a file and -f names manifests too: name them one way, e.g. harmony launch -f %s -f %s", path, path, files[0])}
	default:
		sel.Dir, sel.Manifests = filepath.Dir(path), []string{filepath.Base(path)}
	}
	return sel, nil
}
