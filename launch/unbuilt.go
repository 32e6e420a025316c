package launch

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Images the repository seems to build but nothing builds. Multi-service repositories often
// name their images bare in the manifests (image: frontend) and build them with a tool harmony
// does not read (a Makefile, a CI workflow, Tilt). Nothing pulls such a name on a local
// cluster: the node looks for it in a public registry and the pod waits in ImagePullBackOff.
// The rule, kept narrow so that nginx, redis or busybox never warn: an image is "unbuilt"
// when its reference is bare (no registry or namespace, so no "/"; no tag; no digest), no
// image of skaffold.yaml or harmony.yaml builds it, and a folder of the repository of the same
// name (letter case aside) holds a Dockerfile (or Containerfile). Hidden folders,
// node_modules/, vendor/ and testdata/ are not looked in.

// unbuiltImage is one such image, the folder with its Dockerfile and the containers using it.
type unbuiltImage struct {
	Image   string
	Context string // root-relative folder holding the Dockerfile
	// Containers are "kind/name: container, ..." per object, in the objects' order.
	Containers []string
}

// maxDockerfileScan bounds the entries the search for Dockerfiles visits.
const maxDockerfileScan = 50000

// unbuiltImages lists the images of objs' containers that look built from the repository at
// root (see above) but that no artifact of built builds, sorted by name.
func unbuiltImages(root string, built []ImageArtifact, objs []Object) []unbuiltImage {
	isBuilt := map[string]bool{}
	for _, a := range built {
		isBuilt[a.Image] = true
		if n := normalName(a.Image); n != "" {
			isBuilt[n] = true
		}
	}
	uses := map[string][]string{} // image → containers, per object
	for _, obj := range objs {
		byImage := map[string][]string{}
		var order []string
		for _, spec := range podSpecs(obj) {
			for _, field := range []string{"initContainers", "containers"} {
				list, _ := spec[field].([]any)
				for _, c := range list {
					m, _ := c.(map[string]any)
					img, _ := m["image"].(string)
					name, _ := m["name"].(string)
					if !bareImage(img) || isBuilt[img] || isBuilt[normalName(img)] {
						continue
					}
					if byImage[img] == nil {
						order = append(order, img)
					}
					byImage[img] = append(byImage[img], name)
				}
			}
		}
		for _, img := range order {
			uses[img] = append(uses[img], fmt.Sprintf("%s/%s: %s", strings.ToLower(obj.GetKind()), obj.GetName(), strings.Join(byImage[img], ", ")))
		}
	}
	if len(uses) == 0 {
		return nil
	}
	folders := dockerfileFolders(root, uses)
	var out []unbuiltImage
	for img, containers := range uses {
		if dir, ok := folders[img]; ok {
			out = append(out, unbuiltImage{Image: img, Context: dir, Containers: containers})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out
}

// bareImage reports whether img is a name alone: no registry or namespace, no tag, no digest.
func bareImage(img string) bool {
	return img != "" && !strings.ContainsAny(img, "/:@") && normalName(img) != ""
}

// dockerfileFolders finds, for each image of wanted, the folder of the repository named like it
// that holds a Dockerfile: the shallowest, then the first in name order.
func dockerfileFolders(root string, wanted map[string][]string) map[string]string {
	byName := map[string]string{} // lower-case folder name → image
	for img := range wanted {
		byName[strings.ToLower(img)] = img
	}
	t, err := openTree(root, 0, 0)
	if err != nil {
		return nil
	}
	defer t.Close()
	found := map[string]string{}
	visited := 0
	_ = t.walk(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if visited++; visited > maxDockerfileScan {
			return fs.SkipAll
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "vendor" || name == "testdata") {
				return fs.SkipDir
			}
			return nil
		}
		if (name != "Dockerfile" && name != "Containerfile") || !d.Type().IsRegular() {
			return nil
		}
		dir := path.Dir(p)
		img, ok := byName[strings.ToLower(path.Base(dir))]
		if !ok || dir == "." {
			return nil
		}
		if prev, ok := found[img]; !ok || strings.Count(dir, "/") < strings.Count(prev, "/") ||
			(strings.Count(dir, "/") == strings.Count(prev, "/") && dir < prev) {
			found[img] = dir
		}
		return nil
	})
	return found
}

// unbuiltWarning is the one line that names them, where they seem built from and what to do.
func unbuiltWarning(u []unbuiltImage) string {
	var imgs, dirs []string
	for _, x := range u {
		imgs = append(imgs, fmt.Sprintf("%s (%s)", x.Image, strings.Join(x.Containers, "; ")))
		dirs = append(dirs, x.Context)
	}
	first := u[0]
	if len(u) == 1 {
		return fmt.Sprintf("nothing builds image %s, yet %s holds a Dockerfile: the cluster will look for it in a public registry; "+
			"if the repository builds it, list it in harmony.yaml's images: (image: %s, context: %s)", imgs[0], dirs[0], first.Image, first.Context)
	}
	return fmt.Sprintf("nothing builds images %s, yet %s hold Dockerfiles: the cluster will look for them in a public registry; "+
		"if the repository builds them, list them in harmony.yaml's images: (image: %s, context: %s, and so on)", andList(imgs), andList(dirs), first.Image, first.Context)
}

// andList joins words as a sentence does: "a", "a and b", "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
