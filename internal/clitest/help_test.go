package clitest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHelpAndCompletion: airlock help CMD is CMD --help; every command's
// synopsis spells each of its flags as its flag list does; bash completes
// commands and each command's flags with the script airlock prints.
func TestHelpAndCompletion(t *testing.T) {
	a := newAuthor(t)
	dir := t.TempDir()
	if h1, h2 := a.must(dir, "airlock", "help", "check"), a.must(dir, "airlock", "check", "--help"); h1 != h2 || !strings.Contains(h1, "\n  --json\n") {
		t.Errorf("airlock help check:\n%s\nairlock check --help:\n%s", h1, h2)
	}
	commands := strings.Fields(a.must(dir, "airlock", "__complete"))
	for _, want := range []string{"run", "check", "new", "dev", "test", "trigger", "inspect", "completion"} {
		if !strings.Contains(" "+strings.Join(commands, " ")+" ", " "+want+" ") {
			t.Errorf("completion lacks the command %s: %v", want, commands)
		}
	}
	for _, c := range commands {
		if c == "help" {
			continue
		}
		help := a.must(dir, "airlock", "help", c)
		synopsis, _, _ := strings.Cut(help, "\n")
		for _, f := range strings.Fields(a.must(dir, "airlock", "__complete", c)) {
			if f != "--help" && !strings.Contains(synopsis, f+" ") && !strings.Contains(synopsis, f+"]") {
				t.Errorf("airlock %s: the flag %s is not spelled so in its synopsis %q", c, f, synopsis)
			}
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := a.must(dir, "airlock", "completion", "bash")
	for words, want := range map[string]string{"airlock che": "check", "airlock check --js": "--json", "airlock new --la": "--lang"} {
		cmd := script + "\nCOMP_WORDS=(" + words + "); COMP_CWORD=" +
			"$((${#COMP_WORDS[@]}-1)); _airlock; echo \"${COMPREPLY[*]}\"\n"
		if got := strings.TrimSpace(a.must(dir, "bash", "-c", cmd)); got != want {
			t.Errorf("bash completes %q to %q, want %q", words, got, want)
		}
	}
}
