package stack

import (
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ApplyNag adds cdk-nag's AwsSolutions pack to scope (the app or a stack).
// Its errors fail `cdk synth`; the tests require zero errors and warnings.
// reports=false keeps tests from writing CSV reports.
func ApplyNag(scope constructs.IConstruct, reports bool) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose: jsii.Bool(true),
		Reports: jsii.Bool(reports),
	}), nil)
}

// nagSuppression is one documented exception. appliesTo entries starting
// with "/" are regular expressions (cdk-nag's RegexAppliesTo).
type nagSuppression struct {
	id        string
	reason    string
	appliesTo []string
}

// Suppressions records every suppression added, for docs and tests.
var Suppressions = map[string][]string{} // rule id -> reasons

func suppress(c constructs.IConstruct, sups []nagSuppression) {
	if len(sups) == 0 {
		return
	}
	var list []*cdknag.NagPackSuppression
	for _, s := range sups {
		ns := &cdknag.NagPackSuppression{Id: jsii.String(s.id), Reason: jsii.String(s.reason)}
		if len(s.appliesTo) > 0 {
			var at []interface{}
			for _, a := range s.appliesTo {
				if strings.HasPrefix(a, "/") {
					at = append(at, &cdknag.RegexAppliesTo{Regex: jsii.String(a)})
				} else {
					at = append(at, a)
				}
			}
			ns.AppliesTo = &at
		}
		list = append(list, ns)
		if !contains(Suppressions[s.id], s.reason) {
			Suppressions[s.id] = append(Suppressions[s.id], s.reason)
		}
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &list, jsii.Bool(true))
}

// Reasons for the wildcard resources a Lambda role may hold.
const (
	reasonStar = "Actions without resource-level permissions: ec2 network-interface actions Lambda needs to run in the VPC " +
		"(as in AWSLambdaVPCAccessExecutionRole) and dms:Describe* (DMS supports no resource ARN for them)."
	reasonRDS = "RDS resources are named from the migration id at run time, so ARNs end in a wildcard, scoped to this account " +
		"and region and to one resource type. Reads (Describe*) are harmless; every create requires the seedrepl-managed " +
		"and seedrepl-migration tags in the request (aws:RequestTag), every modify or delete requires " +
		"rds:<type>-tag/seedrepl-managed=true on the resource, and the source instance is explicitly denied."
	reasonDMS = "DMS ARNs carry DMS-generated ids, unknown before creation, so they end in a wildcard scoped to this account " +
		"and region and to one resource type; creates require the seedrepl-managed tag in the request and every " +
		"start, stop or delete requires aws:ResourceTag/seedrepl-managed=true."
)

// nagRole returns the IAM5 suppressions a Lambda role needs: "*" always
// (ENI management), plus the RDS and DMS wildcards its row uses.
func nagRole(p FunctionPermissions) []nagSuppression {
	sups := []nagSuppression{{id: "AwsSolutions-IAM5", reason: reasonStar, appliesTo: []string{"Resource::*"}}}
	var rds, dms bool
	for _, st := range p.Statements {
		for _, r := range st.Resources {
			rds = rds || strings.Contains(r, ":rds:")
			dms = dms || strings.Contains(r, ":dms:")
		}
	}
	if rds {
		sups = append(sups, nagSuppression{id: "AwsSolutions-IAM5", reason: reasonRDS,
			appliesTo: []string{`/^Resource::arn:` + arnHead + `:rds:` + arnRegionAccount + `:(db|cluster|snapshot|pg|cluster-pg|og|subgrp):\*$/g`}})
	}
	if dms {
		sups = append(sups, nagSuppression{id: "AwsSolutions-IAM5", reason: reasonDMS,
			appliesTo: []string{`/^Resource::arn:` + arnHead + `:dms:` + arnRegionAccount + `:(endpoint|cert|rep|task|subgrp):\*$/g`}})
	}
	return sups
}

// How cdk-nag prints the partition, region and account of an ARN: as
// <AWS::...> references in an environment-agnostic stack, literally otherwise.
const (
	arnHead          = `(<AWS::Partition>|aws[a-z-]*)`
	arnRegionAccount = `(<AWS::Region>|[a-z]{2}(-[a-z]+)+-\d+):(<AWS::AccountId>|\d{12})`
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortStrings(s []string) { sort.Strings(s) }
