package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"github.com/sdn-dev/sdn/spec"
)

// filesFlag registers the repeatable -f flag of validate, plan and apply.
func filesFlag(cmd *cobra.Command, paths *[]string) {
	cmd.Flags().StringArrayVarP(paths, "file", "f", nil,
		"HCL file, or directory of .hcl files (not its subdirectories: name them too) (repeatable)")
	_ = cmd.MarkFlagRequired("file")
}

func (a *app) validateCommand() *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE_OR_DIR [-f ...]",
		Short: "Check HCL files locally, without contacting sdnd",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			doc, err := a.load(cmd.Context(), paths)
			if err != nil {
				return err
			}
			clusters := 0
			if doc.Cluster != nil {
				clusters = 1
			}
			msg := fmt.Sprintf("%s valid: %s, %s, %s", count(len(doc.Files), "file"),
				count(clusters, "cluster"), count(len(doc.Networks), "network"), count(len(doc.Workloads), "workload"))
			if n := len(doc.Policies); n == 1 {
				msg += ", 1 policy"
			} else if n > 1 {
				msg += fmt.Sprintf(", %d policies", n)
			}
			if n := len(doc.Services); n > 0 {
				msg += ", " + count(n, "service")
			}
			fmt.Fprintln(a.stdout, msg)
			return nil
		}),
	}
	filesFlag(cmd, &paths)
	return cmd
}

func (a *app) planCommand() *cobra.Command {
	var (
		paths []string
		prune bool
	)
	cmd := &cobra.Command{
		Use:   "plan -f FILE_OR_DIR [-f ...] [--prune]",
		Short: "Show what apply would change; changes nothing",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := a.apply(cmd.Context(), nil, paths, prune, true)
			if err != nil {
				return err
			}
			writePlan(a.stdout, resp)
			return nil
		}),
	}
	filesFlag(cmd, &paths)
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete HCL-declared objects that are not in the files")
	return cmd
}

func (a *app) applyCommand() *cobra.Command {
	var (
		paths       []string
		prune, wait bool
		waitTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE_OR_DIR [-f ...] [--prune] [--wait] [--wait-timeout 2m]",
		Short: "Apply HCL files to the cluster atomically",
		Long: "Apply sends the objects declared in the files to sdnd, which commits them in one\n" +
			"transaction: all of them or none. With --prune, HCL-declared objects missing from\n" +
			"the files are deleted; objects created by CNI, agents or the API are never pruned.\n" +
			"With --wait, apply returns when every registered host realized the new revision.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("wait-timeout") && !wait {
				return usagef("--wait-timeout needs --wait")
			}
			if wait && waitTimeout <= 0 {
				return usagef("--wait-timeout must be positive, got %s", waitTimeout)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := a.apply(cmd.Context(), c, paths, prune, false)
			if err != nil {
				return err
			}
			writeApplied(a.stdout, resp)
			if !wait {
				return nil
			}
			return a.waitRealized(cmd.Context(), c, resp.GetRevision(), waitTimeout)
		}),
	}
	filesFlag(cmd, &paths)
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete HCL-declared objects that are not in the files")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every host realized the applied revision")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

// load reads and decodes the files, printing any diagnostics to stderr;
// an interruption stops it at once, even in a read that blocks (a FIFO).
func (a *app) load(ctx context.Context, paths []string) (*spec.Document, error) {
	type loaded struct {
		doc   *spec.Document
		diags hcl.Diagnostics
	}
	l, err := untilDone(ctx, "reading the files: nothing was sent to sdnd", func() loaded {
		doc, diags := spec.LoadPaths(paths)
		return loaded{doc, diags}
	})
	if err != nil {
		return nil, err
	}
	doc, diags := l.doc, l.diags
	var files map[string]*hcl.File
	if doc != nil {
		files = doc.Files
	}
	if len(diags) > 0 {
		if err := spec.WriteDiagnostics(a.stderr, files, diags); err != nil {
			return nil, fmt.Errorf("write diagnostics: %w", err)
		}
	}
	if diags.HasErrors() {
		fmt.Fprintln(a.stderr)
		return nil, &exitError{code: 1, msg: count(len(diags.Errs()), "error") + " in the files"}
	}
	if doc == nil {
		return nil, fmt.Errorf("reading %v gave no document and no error; this is a bug in sdnctl's spec package", paths)
	}
	return doc, nil
}

// apply loads the files and sends them to sdnd's ConfigService.Apply, as a
// plan when dryRun is set. c may be nil, in which case apply connects.
// Refusals carrying an ApplyError are rendered against the files.
func (a *app) apply(ctx context.Context, c *client, paths []string, prune, dryRun bool) (*sdnv1.ApplyResponse, error) {
	doc, err := a.load(ctx, paths)
	if err != nil {
		return nil, err
	}
	// The ranges stay here, for refusals: the request is a third the size.
	full := doc.ApplyRequest()
	req := proto.Clone(full).(*sdnv1.ApplyRequest)
	model.ClearRanges(req)
	req.Prune = prune
	req.DryRun = dryRun
	verb := "apply"
	if dryRun {
		verb = "plan"
	}
	if err := checkRequestSize(req, verb); err != nil {
		return nil, err
	}
	if c == nil {
		if c, err = a.connect(); err != nil {
			return nil, err
		}
		defer c.Close()
	}
	callCtx, cancel := a.callContext(ctx)
	defer cancel()
	resp, err := c.config.Apply(callCtx, req)
	if err == nil {
		return resp, nil
	}
	if ae := applyErrorOf(err); len(ae.GetViolations()) > 0 {
		model.AttachRanges(ae.GetViolations(), full)
		diags := spec.ViolationDiagnostics(ae.GetViolations())
		if werr := spec.WriteDiagnostics(a.stderr, doc.Files, diags); werr != nil {
			return nil, fmt.Errorf("write diagnostics: %w", werr)
		}
		fmt.Fprintln(a.stderr)
		msg := fmt.Sprintf("sdnd refused the plan: %s (see above)", count(len(ae.GetViolations()), "problem"))
		if !dryRun {
			msg = fmt.Sprintf("sdnd refused the apply: %s (see above); nothing was applied",
				count(len(ae.GetViolations()), "problem"))
		}
		return nil, &exitError{code: 1, msg: msg}
	}
	if tooLarge := a.tooLargeForServer(err, req); tooLarge != nil {
		return nil, tooLarge
	}
	return nil, a.rpcError(callCtx, err)
}
