package preflight

import (
	"strings"
)

// kernelArgs returns the command that adds args to the kernel command line for the next boot,
// with the tool this host boots with.
func (m *machine) kernelArgs(args string) string {
	switch {
	case m.wsl():
		return `on Windows, add "kernelCommandLine = ` + args + `" under [wsl2] in %UserProfile%\.wslconfig, then run: wsl.exe --shutdown`
	case m.program("/usr/sbin/grubby", "/sbin/grubby", "/usr/bin/grubby") != "":
		return `sudo grubby --update-kernel=ALL --args="` + args + `" && sudo reboot`
	case m.exists("/boot/firmware/cmdline.txt"):
		return "sudo sed -i '1 s/$/ " + args + "/' /boot/firmware/cmdline.txt && sudo reboot"
	case m.exists("/boot/cmdline.txt"):
		return "sudo sed -i '1 s/$/ " + args + "/' /boot/cmdline.txt && sudo reboot"
	case m.exists("/etc/default/grub"):
		update := "sudo grub2-mkconfig -o /boot/grub2/grub.cfg"
		if m.program("/usr/sbin/update-grub", "/sbin/update-grub") != "" {
			update = "sudo update-grub"
		}
		return `sudo sed -i 's/^GRUB_CMDLINE_LINUX="/&` + args + ` /' /etc/default/grub && ` + update + " && sudo reboot"
	}
	return "add " + args + " to the kernel command line in your boot loader's configuration, then reboot"
}

// installPackage returns the command that installs a package with this host's package manager;
// names maps a manager (apt-get, dnf, zypper, apk) to the package's name there.
func (m *machine) installPackage(names map[string]string) string {
	for _, mgr := range []struct{ name, cmd string }{
		{"apt-get", "sudo apt-get install -y "},
		{"dnf", "sudo dnf install -y "},
		{"yum", "sudo yum install -y "},
		{"zypper", "sudo zypper install -y "},
		{"apk", "sudo apk add "},
	} {
		pkg := names[mgr.name]
		if mgr.name == "yum" {
			pkg = names["dnf"]
		}
		if pkg != "" && m.program("/usr/bin/"+mgr.name, "/bin/"+mgr.name, "/sbin/"+mgr.name, "/usr/sbin/"+mgr.name) != "" {
			return mgr.cmd + pkg
		}
	}
	var alts []string
	for _, mgr := range []string{"apt-get", "dnf", "zypper", "apk"} {
		if names[mgr] != "" {
			alts = append(alts, names[mgr]+" ("+mgr+")")
		}
	}
	return "install " + strings.Join(alts, " or ")
}

// wsl reports whether the host is Linux in Windows' WSL.
func (m *machine) wsl() bool {
	rel := strings.ToLower(m.read("/proc/sys/kernel/osrelease"))
	return strings.Contains(rel, "microsoft") || strings.Contains(rel, "wsl") ||
		m.exists("/proc/sys/fs/binfmt_misc/WSLInterop") || m.host.Getenv("WSL_DISTRO_NAME") != ""
}

// systemd reports whether systemd is the host's init system.
func (m *machine) systemd() bool { return m.isDir("/run/systemd/system") }
