package cli

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dealflow/dealflow/internal/config"
)

// cmdConfig prints the settings a `run` with the same flags and
// environment would use, and where each value comes from.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reference := fs.Bool("reference", false, "print every setting's documentation (flag, environment variable, default, meaning) as a Markdown table")
	var cfg config.Config
	binder := config.Register(fs, &cfg)
	if err := fs.Parse(config.JoinValues(args)); err != nil {
		return err
	}
	if err := strayArgs(fs.Args()); err != nil {
		return err
	}
	if *reference {
		fmt.Fprint(stdout, config.Markdown())
		return nil
	}
	err := binder.Finish()
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, st := range binder.Effective() {
		v := st.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "--%s\t%s\t%s\n", st.Flag, v, st.Source)
	}
	_ = tw.Flush()
	if err != nil {
		return fmt.Errorf("these settings would not start: %w", err)
	}
	return nil
}
