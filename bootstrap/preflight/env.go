package preflight

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// checkMirror: every download comes from HARMONY_MIRROR (or the public release server).
func checkMirror(_ context.Context, m *machine) Finding {
	raw := strings.TrimSpace(m.host.Getenv(installer.MirrorEnv))
	if raw == "" {
		return ok("%s (the default; %s is not set)", installer.DefaultMirror, installer.MirrorEnv)
	}
	if err := installer.CheckMirror(raw); err != nil {
		return fail(err.Error(), "every download of harmony and k3s comes from it", strings.Join(hint.Of(err), "; "))
	}
	return ok("%s (%s)", redact(raw), installer.MirrorEnv)
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// proxyVars are the proxy variables, in both spellings (many setups have only the lowercase
// ones), as harmony's downloads and k3s read them.
var proxyVars = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"}

// clusterNoProxy is what NO_PROXY needs so that k3s's own traffic (pods, Services, the cluster's
// names) does not go through the proxy.
var clusterNoProxy = []string{podCIDR, serviceCIDR, ".svc", ".cluster.local"}

// checkProxy: harmony's downloads use the proxy variables it runs with; k3s's service reads its
// own (k3s.service.env), and its cluster traffic must not go through the proxy.
func checkProxy(_ context.Context, m *machine) Finding {
	vars := map[string]string{}
	var seen []string
	for _, name := range proxyVars {
		if v := strings.TrimSpace(m.host.Getenv(name)); v != "" {
			vars[strings.ToUpper(name)] = v
			seen = append(seen, name+"="+redact(v))
		}
	}
	if vars["HTTPS_PROXY"] == "" && vars["HTTP_PROXY"] == "" {
		if len(seen) > 0 {
			return ok("no proxy (only %s): harmony and k3s connect directly", strings.Join(seen, ", "))
		}
		return ok("no proxy variables: harmony and k3s connect directly")
	}
	for _, name := range []string{"HTTPS_PROXY", "HTTP_PROXY"} {
		v := vars[name]
		if v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "http://" + v // as Go reads a proxy without a scheme
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return fail(name+"="+redact(v)+" is not a URL", "harmony downloads through it, and every download fails",
				"export "+name+"=http://proxy.example.com:3128")
		}
	}
	seenS := strings.Join(seen, ", ")
	var missing []string
	noProxy := strings.Split(vars["NO_PROXY"], ",")
	for _, want := range clusterNoProxy {
		covered := false
		for _, np := range noProxy {
			np = strings.TrimSpace(np)
			covered = covered || np == want || np == "*" || (strings.HasPrefix(want, "10.") && np == "10.0.0.0/8")
		}
		if !covered {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return warn(seenS, "NO_PROXY lacks "+list(missing)+": k3s would send its pods' and Services' traffic to the proxy",
			`export NO_PROXY="${NO_PROXY:+$NO_PROXY,}`+strings.Join(missing, ",")+`"`)
	}
	if m.opts.Runtime != "k3s" || !m.systemd() && !m.exists("/sbin/openrc-run") {
		return ok("%s (k3s runs with harmony's environment)", seenS)
	}
	env := "/etc/systemd/system/k3s.service.env"
	restart := "sudo systemctl restart k3s"
	if !m.systemd() {
		env, restart = "/etc/rancher/k3s/k3s.env", "sudo rc-service k3s restart"
	}
	b, err := os.ReadFile(m.at(env))
	switch {
	case err == nil && strings.Contains(strings.ToUpper(string(b)), "PROXY="):
		return ok("%s; k3s's service has its own in %s", seenS, env)
	case errors.Is(err, os.ErrPermission):
		f := ok("%s; k3s's service reads its own from %s (only root can read it)", seenS, env)
		f.NeedsRoot = env
		return f
	}
	fix := `printf 'HTTPS_PROXY=%s\nHTTP_PROXY=%s\nNO_PROXY=%s\n' "$HTTPS_PROXY" "$HTTP_PROXY" "$NO_PROXY" | sudo tee -a ` + env + " && " + restart
	why := "k3s's service does not run with your environment: without the variables in " + env + " it pulls images directly"
	if errors.Is(err, os.ErrNotExist) {
		why += " (harmony bootstrap creates the file empty: run the fix after it)"
	}
	return warn(seenS, why, fix)
}

// checkClock: signatures expire, and so do TLS certificates: a clock far off refuses good ones.
// It asks HARMONY_MIRROR for the time (one HEAD request, bounded to a second) only when the
// user configured one: doctor contacts no server of its own accord.
func checkClock(ctx context.Context, m *machine) Finding {
	now := m.opts.Now()
	raw := strings.TrimRight(strings.TrimSpace(m.host.Getenv(installer.MirrorEnv)), "/")
	if raw == "" {
		return skipped("%s is not set, so no server is asked for the time (this machine says %s)", installer.MirrorEnv, now.UTC().Format(time.RFC3339))
	}
	if installer.CheckMirror(raw) != nil {
		return skipped("%s is not valid (the mirror check says why)", installer.MirrorEnv)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, raw+"/", nil)
	if err != nil {
		return skipped("%v", err)
	}
	tr := &http.Transport{DialContext: m.host.Dial, Proxy: func(r *http.Request) (*url.URL, error) {
		if m.host.Getenv("HTTPS_PROXY")+m.host.Getenv("https_proxy")+m.host.Getenv("HTTP_PROXY")+m.host.Getenv("http_proxy") == "" {
			return nil, nil
		}
		return http.ProxyFromEnvironment(r)
	}}
	defer tr.CloseIdleConnections()
	start := now
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fail(fmt.Sprintf("%s's certificate is not valid at this machine's time, %s", redact(raw), now.UTC().Format(time.RFC3339)),
			"a clock far off refuses good certificates and signatures (harmony's runtime manifest expires)", clockFix(m))
	case err != nil:
		return skipped("%s did not answer within a second: %v", redact(raw), err)
	}
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return skipped("%s sent no Date", redact(raw))
	}
	skew := start.Add(m.opts.Now().Sub(start) / 2).Sub(date).Round(time.Second)
	abs := max(skew, -skew)
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	seen := fmt.Sprintf("%s %s %s", abs, dir, redact(raw))
	switch {
	case abs > time.Hour:
		return fail(seen, "a clock this far off refuses good certificates and signatures (harmony's runtime manifest expires), and k3s's certificates start in the future", clockFix(m))
	case abs > 2*time.Minute:
		return warn(seen, "k3s's certificates and tokens are checked against the clock: minutes off are enough to refuse them", clockFix(m))
	}
	return ok("within %s of %s", max(abs, time.Second), redact(raw))
}

func clockFix(m *machine) string {
	switch m.opts.GOOS {
	case "darwin":
		return "sudo sntp -sS time.apple.com"
	case "windows":
		return "w32tm /resync"
	}
	if m.systemd() {
		return "sudo timedatectl set-ntp true"
	}
	return "sudo chronyc makestep"
}

// checkHome: harmony's data folder holds the download cache.
func checkHome(_ context.Context, _ *machine) Finding {
	home, err := installer.Home()
	if err == nil {
		err = installer.CheckHome(home)
	}
	if err != nil {
		return fail(err.Error(), "harmony keeps its downloads there", strings.Join(hint.Of(err), "; "))
	}
	return ok("%s (the download cache)", home)
}

// checkKubeconfig: bootstrap merges the "harmony" context into the user's kubeconfig.
func checkKubeconfig(_ context.Context, _ *machine) Finding {
	kc, err := bootstrap.NewUserKubeconfig()
	if err == nil {
		err = kc.Check()
	}
	if err != nil {
		return fail(err.Error(), "harmony bootstrap adds the context \"harmony\" to it, and launch uses it", strings.Join(hint.Of(err), "; "))
	}
	return ok("bootstrap adds the context %q to %s", bootstrap.ContextName, kc.Path)
}
