package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// printFlags lists a command's flags as its usage line spells them:
// --name for a long name, -x for a one-letter one.
func printFlags(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		kind, usage := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if kind != "" {
			line += " " + kind
		}
		if len(line) <= 4 { // a one-letter boolean fits beside its usage
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "false" && d != "0" {
			line += fmt.Sprintf(" (default %q)", d)
		}
		fmt.Fprintln(fs.Output(), line)
	})
}

// commandNames are the commands that the usage lists.
func commandNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  airlock ([a-z]+)`).FindAllStringSubmatch(usage, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return append(names, "help", "completion")
}

// flagsOf returns the flags of the command name, as its --help lists them.
func flagsOf(name string) []string {
	var out bytes.Buffer
	run([]string{name, "--help"}, &out, io.Discard)
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  (--?[a-z][a-z0-9-]*)`).FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	return append(flags, "--help")
}

const completionSynopsis = `completion bash

Prints a bash completion script for airlock: commands, then each command's
flags, then file names. Load it in this shell with
  source <(airlock completion bash)
or install it with
  airlock completion bash > /etc/bash_completion.d/airlock`

const bashCompletion = `# bash completion for airlock (airlock completion bash)
_airlock() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$(airlock __complete)" -- "$cur"))
	elif [ "${cur#-}" != "$cur" ]; then
		COMPREPLY=($(compgen -W "$(airlock __complete "${COMP_WORDS[1]}")" -- "$cur"))
	fi
}
complete -o default -F _airlock airlock
`

func cmdCompletion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("completion", completionSynopsis, stderr)
	pos, err := parseArgs(fs, args, stdout, 1, 1)
	if err != nil {
		return err
	}
	if pos[0] != "bash" {
		return fmt.Errorf("no completion for %q; airlock completes in bash", pos[0])
	}
	fmt.Fprint(stdout, bashCompletion)
	return nil
}

// complete prints the words the completion script offers: the commands,
// or the flags of args[0].
func complete(args []string, stdout io.Writer) {
	words := commandNames()
	if len(args) > 0 {
		words = flagsOf(args[0])
	}
	fmt.Fprintln(stdout, strings.Join(words, "\n"))
}
