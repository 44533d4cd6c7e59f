// Package stack is the CDK stack of seedrepl: one Lambda per Task state of
// statemachine/migration.asl.json, the state machine, least-privilege IAM,
// the notification topic, the rehearsal schedule, alarms and a dashboard.
package stack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/seedrepl/seedrepl/statemachine"
)

// StateMachineName is the deployed state machine's name.
const StateMachineName = "seedrepl-migration"

// Lambda sizing. Timeouts stay at or below the Task state's TimeoutSeconds in
// the ASL, so the Lambda's own timeout (a clear Sandbox.Timedout) comes first.
const (
	MemoryMB              = 256
	DefaultTimeoutSeconds = 60
)

// TimeoutSeconds lists the functions that need more than the default: those
// that wait on PostgreSQL (slot creation waits for running transactions,
// content comparison reads whole tables, cleanup drops a subscription).
var TimeoutSeconds = map[string]int{
	"Preflight":                120,
	"CreatePublicationAndSlot": 600,
	"ReadSeedLSN":              300,
	"ProveSeed":                300,
	"ConfigureSubscription":    300,
	"ConfigureDMS":             120,
	"VerifyLag":                120,
	"Validate":                 600,
	"Teardown":                 600,
	"Rollback":                 600,
}

// Timeout returns the Lambda timeout of a Task state's function.
func Timeout(state string) int {
	if t, ok := TimeoutSeconds[state]; ok {
		return t
	}
	return DefaultTimeoutSeconds
}

// Environment variable names the handlers read.
const (
	EnvSSLMode           = "SEEDREPL_SSLMODE"
	EnvSSLRootCert       = "SEEDREPL_SSLROOTCERT"
	EnvTopicARN          = "SEEDREPL_TOPIC_ARN"
	EnvDMSSecretsRoleARN = "SEEDREPL_DMS_SECRETS_ROLE_ARN"
	EnvAllowedSecretARNs = "SEEDREPL_ALLOWED_SECRET_ARNS"
)

// Stack is the deployed workflow.
type Stack struct {
	awscdk.Stack
	Config         Config
	Functions      map[string]awslambda.Function // by Task state name
	Roles          map[string]awsiam.Role        // by Task state name
	StateMachine   awsstepfunctions.StateMachine
	Topic          awssns.Topic
	DMSSecretsRole awsiam.Role
	Schedule       awsscheduler.CfnSchedule
	Alarms         map[string]awscloudwatch.Alarm // by metric name
}

// New builds the stack. It fails, before creating anything, if the ASL's
// placeholders and statemachine.Functions disagree.
func New(scope constructs.Construct, cfg Config) (*Stack, error) {
	if _, err := statemachine.Substitute(statemachine.Definition, statemachine.LocalSubstitutions()); err != nil {
		return nil, fmt.Errorf("statemachine/migration.asl.json and statemachine.Functions disagree: %w", err)
	}
	for _, f := range statemachine.Functions {
		if _, ok := Permissions[f.Name]; !ok {
			return nil, fmt.Errorf("infra/stack/permissions.go: no IAM row for Task state %q", f.Name)
		}
	}

	props := &awscdk.StackProps{
		Description: jsii.String("seedrepl: RDS PostgreSQL to Aurora PostgreSQL with seeded logical replication (Step Functions + Lambda)"),
	}
	if cfg.Account != "" || cfg.Region != "" {
		props.Env = &awscdk.Environment{}
		if cfg.Account != "" {
			props.Env.Account = jsii.String(cfg.Account)
		}
		if cfg.Region != "" {
			props.Env.Region = jsii.String(cfg.Region)
		}
	}
	s := &Stack{
		Stack:     awscdk.NewStack(scope, jsii.String(cfg.StackName), props),
		Config:    cfg,
		Functions: map[string]awslambda.Function{},
		Roles:     map[string]awsiam.Role{},
		Alarms:    map[string]awscloudwatch.Alarm{},
	}
	awscdk.Tags_Of(s.Stack).Add(jsii.String("seedrepl-stack"), jsii.String(cfg.StackName), nil)

	vpc, subnets := s.network()
	sg := s.securityGroup(vpc)
	s.notifications()
	s.dmsSecretsRole()
	if err := s.functions(vpc, subnets, sg); err != nil {
		return nil, err
	}
	s.grantNotifyKey()
	s.stateMachine()
	s.schedule()
	s.alarms()
	s.dashboard()
	s.outputs(sg)
	return s, nil
}

func (s *Stack) network() (awsec2.IVpc, []awsec2.ISubnet) {
	cfg := s.Config
	// Imported subnets carry no route table id; nothing here reads it.
	awscdk.Annotations_Of(s.Stack).AcknowledgeWarning(jsii.String("@aws-cdk/aws-ec2:noSubnetRouteTableId"),
		jsii.String("imported subnets: no route table is read"))
	vpc := awsec2.Vpc_FromVpcAttributes(s.Stack, jsii.String("DatabaseVpc"), &awsec2.VpcAttributes{
		VpcId:             jsii.String(cfg.VpcID),
		AvailabilityZones: jsii.Strings(cfg.AvailabilityZones...),
		PrivateSubnetIds:  jsii.Strings(cfg.PrivateSubnetIDs...),
	})
	var subnets []awsec2.ISubnet
	for i, id := range cfg.PrivateSubnetIDs {
		subnets = append(subnets, awsec2.Subnet_FromSubnetId(s.Stack, jsii.String(fmt.Sprintf("PrivateSubnet%d", i+1)), jsii.String(id)))
	}
	return vpc, subnets
}

// securityGroup is the Lambdas' own group: no ingress; egress only to
// HTTPS (AWS APIs through NAT or VPC endpoints) and PostgreSQL. The database
// security groups must allow ingress from it (docs/deploy.md).
func (s *Stack) securityGroup(vpc awsec2.IVpc) awsec2.SecurityGroup {
	sg := awsec2.NewSecurityGroup(s.Stack, jsii.String("LambdaSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		AllowAllOutbound: jsii.Bool(false),
		Description:      jsii.String("seedrepl Lambdas: HTTPS to AWS APIs, PostgreSQL to the source and Aurora"),
	})
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("AWS APIs (RDS, DMS, Secrets Manager, SNS)"), nil)
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(float64(s.Config.DBPort))), jsii.String("PostgreSQL: source instance and Aurora cluster"), nil)
	return sg
}

// notifications: a topic encrypted with a customer managed key (CloudWatch
// alarms cannot publish to a topic under the AWS managed aws/sns key, whose
// policy cannot name cloudwatch.amazonaws.com), SSL enforced.
func (s *Stack) notifications() {
	key := awskms.NewKey(s.Stack, jsii.String("NotificationKey"), &awskms.KeyProps{
		Description:       jsii.String("seedrepl: encrypts the notification topic"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": s.Account()}},
	}), nil)
	s.Topic = awssns.NewTopic(s.Stack, jsii.String("Notifications"), &awssns.TopicProps{
		DisplayName: jsii.String("seedrepl migration notifications"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	s.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*s.Topic.TopicArn()),
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": s.Account()}},
	}))
}

// grantNotifyKey lets the Notify role use the topic's key, through SNS only.
// It is a key policy grant so that the role's own policy stays exactly the
// table row (sns:Publish on the topic). The role is matched by a principal
// tag rather than by its ARN: key -> role -> topic -> key would be a cycle.
func (s *Stack) grantNotifyKey() {
	role, ok := s.Roles["Notify"]
	if !ok {
		return
	}
	awscdk.Tags_Of(role).Add(jsii.String(notifyPrincipalTag), jsii.String("true"), nil)
	s.Topic.MasterKey().AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("NotifyFunctionPublishesThroughSNS"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{
			"kms:CallerAccount":                      s.Account(),
			"kms:ViaService":                         fmt.Sprintf("sns.%s.amazonaws.com", *s.Region()),
			"aws:PrincipalTag/" + notifyPrincipalTag: "true",
		}},
	}), nil)
}

// notifyPrincipalTag marks the Notify function's role for the key policy.
const notifyPrincipalTag = "seedrepl-notify-publisher"

// dmsSecretsRole is the role DMS assumes to read the endpoint secrets
// (SecretsManagerAccessRoleArn). DMS uses its regional service principal.
func (s *Stack) dmsSecretsRole() {
	s.DMSSecretsRole = awsiam.NewRole(s.Stack, jsii.String("DMSSecretsAccessRole"), &awsiam.RoleProps{
		Description: jsii.String("seedrepl: lets AWS DMS read the configured database secrets"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String(fmt.Sprintf("dms.%s.amazonaws.com", *s.Region())), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": s.Account()}},
		}),
		InlinePolicies: &map[string]awsiam.PolicyDocument{
			"secrets": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:       jsii.String("ReadConfiguredSecrets"),
					Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
					Resources: jsii.Strings(s.Config.SecretARNs...),
				}),
			}}),
		},
	})
}

// expand turns the ARN templates of a statement into this stack's ARNs.
func (s *Stack) expand(templates []string) []string {
	r := strings.NewReplacer(
		"{partition}", *s.Partition(),
		"{region}", *s.Region(),
		"{account}", *s.Account(),
		"{source}", s.Config.SourceInstanceID,
	)
	var out []string
	for _, t := range templates {
		switch t {
		case ResSecrets:
			out = append(out, s.Config.SecretARNs...)
		case ResTopic:
			out = append(out, *s.Topic.TopicArn())
		case ResDMSSecretsRole:
			out = append(out, *s.DMSSecretsRole.RoleArn())
		default:
			out = append(out, r.Replace(t))
		}
	}
	return out
}

func (s *Stack) policyStatement(st Statement) awsiam.PolicyStatement {
	effect := awsiam.Effect_ALLOW
	if st.Deny {
		effect = awsiam.Effect_DENY
	}
	props := &awsiam.PolicyStatementProps{
		Sid:       jsii.String(st.Sid),
		Effect:    effect,
		Actions:   jsii.Strings(st.Actions...),
		Resources: jsii.Strings(s.expand(st.Resources)...),
	}
	if len(st.Conditions) > 0 {
		c := map[string]interface{}{}
		for op, kv := range st.Conditions {
			m := map[string]interface{}{}
			for k, v := range kv {
				if len(v) == 1 {
					m[k] = v[0]
				} else {
					m[k] = v
				}
			}
			c[op] = m
		}
		props.Conditions = &c
	}
	return awsiam.NewPolicyStatement(props)
}

// functions creates one role, log group and Lambda per Task state.
func (s *Stack) functions(vpc awsec2.IVpc, subnets []awsec2.ISubnet, sg awsec2.ISecurityGroup) error {
	cfg := s.Config
	retention := awslogs.RetentionDays(retentionDays[cfg.LogRetentionDays])
	for _, f := range statemachine.Functions {
		logs := awslogs.NewLogGroup(s.Stack, jsii.String(f.Name+"Logs"), &awslogs.LogGroupProps{
			Retention: retention,
		})
		runtime := awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("WriteOwnLogs"),
				Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
				Resources: jsii.Strings(*logs.LogGroupArn()),
			}),
			// What AWSLambdaVPCAccessExecutionRole grants, minus logs:
			// Lambda manages the function's network interfaces with it.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid: jsii.String("ManageVpcNetworkInterfaces"),
				Actions: jsii.Strings("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
					"ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
					"ec2:UnassignPrivateIpAddresses"),
				Resources: jsii.Strings("*"),
			}),
		}})
		policies := map[string]awsiam.PolicyDocument{"runtime": runtime}
		perm := Permissions[f.Name]
		if len(perm.Statements) > 0 {
			var sts []awsiam.PolicyStatement
			for _, st := range perm.Statements {
				sts = append(sts, s.policyStatement(st))
			}
			policies["api"] = awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &sts})
		}
		role := awsiam.NewRole(s.Stack, jsii.String(f.Name+"Role"), &awsiam.RoleProps{
			Description:    jsii.String(fmt.Sprintf("seedrepl %s Lambda (%s)", f.Name, f.Dir)),
			AssumedBy:      awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
			InlinePolicies: &policies,
		})
		s.Roles[f.Name] = role

		env := map[string]*string{
			EnvSSLMode:           jsii.String("verify-full"),
			EnvSSLRootCert:       jsii.String(cfg.CABundlePath),
			EnvAllowedSecretARNs: jsii.String(strings.Join(cfg.SecretARNs, ",")),
		}
		switch f.Name {
		case "Notify":
			env[EnvTopicARN] = s.Topic.TopicArn()
		case "ConfigureDMS":
			env[EnvDMSSecretsRoleARN] = s.DMSSecretsRole.RoleArn()
		}
		codeDir, err := cfg.CodeDir(f)
		if err != nil {
			return fmt.Errorf("stub code for %s: %w", f.Name, err)
		}
		fn := awslambda.NewFunction(s.Stack, jsii.String(f.Name+"Function"), &awslambda.FunctionProps{
			FunctionName:   jsii.String(statemachine.FunctionPrefix + f.Dir),
			Description:    jsii.String(fmt.Sprintf("seedrepl Task state %s (lambdas/%s)", f.Name, f.Dir)),
			Code:           awslambda.Code_FromAsset(jsii.String(codeDir), nil),
			Handler:        jsii.String("bootstrap"),
			Runtime:        awslambda.Runtime_PROVIDED_AL2023(),
			Architecture:   awslambda.Architecture_ARM_64(),
			MemorySize:     jsii.Number(MemoryMB),
			Timeout:        awscdk.Duration_Seconds(jsii.Number(float64(Timeout(f.Name)))),
			Role:           role,
			Vpc:            vpc,
			VpcSubnets:     &awsec2.SubnetSelection{Subnets: &subnets},
			SecurityGroups: &[]awsec2.ISecurityGroup{sg},
			Environment:    &env,
			LoggingFormat:  awslambda.LoggingFormat_JSON,
			LogGroup:       logs,
		})
		s.Functions[f.Name] = fn
		suppress(role, nagRole(perm))
	}
	if len(cfg.StubbedFunctions) > 0 {
		awscdk.Annotations_Of(s.Stack).AddWarningV2(jsii.String("seedrepl:StubCode"), jsii.String(fmt.Sprintf(
			"stubMissingCode: %d functions use a stub that fails every invocation (%s): run make build before deploying",
			len(cfg.StubbedFunctions), strings.Join(cfg.StubbedFunctions, ", "))))
	}
	return nil
}

func (s *Stack) stateMachine() {
	logs := awslogs.NewLogGroup(s.Stack, jsii.String("StateMachineLogs"), &awslogs.LogGroupProps{
		LogGroupName: jsii.String("/aws/vendedlogs/states/" + s.Config.StackName),
		Retention:    awslogs.RetentionDays(retentionDays[s.Config.LogRetentionDays]),
	})
	subs := map[string]*string{}
	var arns []string
	for _, f := range statemachine.Functions {
		arn := s.Functions[f.Name].FunctionArn()
		subs[f.Placeholder] = arn
		arns = append(arns, *arn)
	}
	s.StateMachine = awsstepfunctions.NewStateMachine(s.Stack, jsii.String("StateMachine"), &awsstepfunctions.StateMachineProps{
		StateMachineName:        jsii.String(StateMachineName),
		Comment:                 jsii.String("seedrepl migration (statemachine/migration.asl.json)"),
		DefinitionBody:          awsstepfunctions.DefinitionBody_FromString(jsii.String(statemachine.Definition)),
		DefinitionSubstitutions: &subs,
		Logs: &awsstepfunctions.LogOptions{
			Destination: logs,
			Level:       awsstepfunctions.LogLevel_ALL,
			// Execution input and output hold ids and ARNs only, but keep
			// them out of the logs anyway: the console shows them to those
			// allowed to see executions.
			IncludeExecutionData: jsii.Bool(false),
		},
		TracingEnabled: jsii.Bool(true),
	})
	// Exactly the workflow's functions, unqualified (the ASL uses their ARNs).
	s.StateMachine.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("InvokeWorkflowFunctions"),
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: jsii.Strings(arns...),
	}))
	suppress(s.StateMachine.Role(), []nagSuppression{{
		id:        "AwsSolutions-IAM5",
		reason:    "Added by CDK for Step Functions logging (logs:CreateLogDelivery, logs:GetLogDelivery, logs:UpdateLogDelivery, logs:DeleteLogDelivery, logs:ListLogDeliveries, logs:PutResourcePolicy, logs:DescribeResourcePolicies, logs:DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords, xray:GetSamplingRules, xray:GetSamplingTargets): these actions support no resource-level permissions.",
		appliesTo: []string{"Resource::*"},
	}})
}

// schedule starts a rehearsal on a cron; DISABLED unless rehearsalSchedule
// and rehearsalInput are both configured.
func (s *Stack) schedule() {
	cfg := s.Config
	role := awsiam.NewRole(s.Stack, jsii.String("RehearsalScheduleRole"), &awsiam.RoleProps{
		Description: jsii.String("seedrepl: EventBridge Scheduler starts rehearsal executions"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"aws:SourceAccount": s.Account()}},
		}),
		InlinePolicies: &map[string]awsiam.PolicyDocument{
			"start": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:       jsii.String("StartRehearsal"),
					Actions:   jsii.Strings("states:StartExecution"),
					Resources: jsii.Strings(*s.StateMachine.StateMachineArn()),
				}),
			}}),
		},
	})
	state, expr, input := "DISABLED", "cron(0 2 ? * SAT *)", `{"rehearsal":true}`
	if cfg.RehearsalEnabled() {
		state, expr, input = "ENABLED", cfg.RehearsalSchedule, cfg.RehearsalInput
	}
	s.Schedule = awsscheduler.NewCfnSchedule(s.Stack, jsii.String("RehearsalSchedule"), &awsscheduler.CfnScheduleProps{
		Description:                jsii.String("seedrepl: scheduled rehearsal (input must say \"rehearsal\": true)"),
		ScheduleExpression:         jsii.String(expr),
		ScheduleExpressionTimezone: jsii.String(cfg.RehearsalTimezone),
		State:                      jsii.String(state),
		FlexibleTimeWindow:         &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("OFF")},
		Target: &awsscheduler.CfnSchedule_TargetProperty{
			Arn:     s.StateMachine.StateMachineArn(),
			RoleArn: role.RoleArn(),
			Input:   jsii.String(input),
			// A missed rehearsal is not retried: the next one comes.
			RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{MaximumRetryAttempts: jsii.Number(0)},
		},
	})
}

// AlarmSpec describes one alarm on the source instance.
type AlarmSpec struct {
	Metric      string
	Statistic   string
	Compare     awscloudwatch.ComparisonOperator
	Threshold   func(AlarmThresholds) float64
	Missing     awscloudwatch.TreatMissingData
	Description string
}

// AlarmSpecs are the source alarms, in dashboard order.
var AlarmSpecs = []AlarmSpec{
	{"OldestReplicationSlotLag", "Maximum", awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		func(a AlarmThresholds) float64 { return a.OldestReplicationSlotLag },
		awscloudwatch.TreatMissingData_NOT_BREACHING,
		"The most lagging replication slot on the source retains this much WAL: the subscription or DMS task is behind or stopped. Left alone, WAL fills the disk."},
	{"ReplicationSlotDiskUsage", "Maximum", awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		func(a AlarmThresholds) float64 { return a.ReplicationSlotDiskUsage },
		awscloudwatch.TreatMissingData_NOT_BREACHING,
		"Replication slot files use this much disk on the source. Check the migration; run Rollback (which drops the slot) if it is abandoned."},
	{"TransactionLogsDiskUsage", "Maximum", awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		func(a AlarmThresholds) float64 { return a.TransactionLogsDiskUsage },
		awscloudwatch.TreatMissingData_NOT_BREACHING,
		"WAL on the source uses this much disk. A retained replication slot is the usual cause during a migration."},
	{"FreeStorageSpace", "Minimum", awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		func(a AlarmThresholds) float64 { return a.FreeStorageSpace },
		awscloudwatch.TreatMissingData_MISSING,
		"The source instance is running out of storage. If a migration slot retains WAL, drop it (Rollback) before production stops."},
}

func (s *Stack) sourceMetric(name, stat string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/RDS"),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"DBInstanceIdentifier": jsii.String(s.Config.SourceInstanceID)},
		Statistic:     jsii.String(stat),
		Period:        awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

func (s *Stack) alarms() {
	action := awscloudwatchactions.NewSnsAction(s.Topic)
	for _, a := range AlarmSpecs {
		alarm := awscloudwatch.NewAlarm(s.Stack, jsii.String("Source"+a.Metric+"Alarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(fmt.Sprintf("seedrepl source %s: %s", s.Config.SourceInstanceID, a.Description)),
			Metric:             s.sourceMetric(a.Metric, a.Statistic),
			Threshold:          jsii.Number(a.Threshold(s.Config.Alarms)),
			ComparisonOperator: a.Compare,
			EvaluationPeriods:  jsii.Number(2),
			DatapointsToAlarm:  jsii.Number(2),
			TreatMissingData:   a.Missing,
		})
		alarm.AddAlarmAction(action)
		alarm.AddOkAction(action)
		s.Alarms[a.Metric] = alarm
	}
}

func (s *Stack) dashboard() {
	var sourceWidgets []awscloudwatch.IWidget
	for _, a := range AlarmSpecs {
		sourceWidgets = append(sourceWidgets, awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title:           jsii.String(fmt.Sprintf("%s (%s)", a.Metric, s.Config.SourceInstanceID)),
			Left:            &[]awscloudwatch.IMetric{s.sourceMetric(a.Metric, a.Statistic)},
			LeftAnnotations: &[]*awscloudwatch.HorizontalAnnotation{{Value: jsii.Number(a.Threshold(s.Config.Alarms)), Label: jsii.String("alarm")}},
			Width:           jsii.Number(6),
		}))
	}
	sm := s.StateMachine
	executions := awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String("State machine executions"),
		Left: &[]awscloudwatch.IMetric{
			sm.MetricStarted(nil), sm.MetricSucceeded(nil), sm.MetricFailed(nil),
			sm.MetricAborted(nil), sm.MetricTimedOut(nil),
		},
		Width: jsii.Number(12),
	})
	var errs []awscloudwatch.IMetric
	names := make([]string, 0, len(s.Functions))
	for n := range s.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		errs = append(errs, s.Functions[n].MetricErrors(&awscloudwatch.MetricOptions{
			Label:     jsii.String(n),
			Statistic: jsii.String("Sum"),
		}))
	}
	lambdaErrors := awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String("Lambda errors by Task state"),
		Left:  &errs,
		Width: jsii.Number(12),
	})
	var alarms []awscloudwatch.IAlarm
	for _, a := range AlarmSpecs {
		alarms = append(alarms, s.Alarms[a.Metric])
	}
	status := awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title:  jsii.String("Source alarms"),
		Alarms: &alarms,
		Width:  jsii.Number(24),
	})
	awscloudwatch.NewDashboard(s.Stack, jsii.String("MigrationDashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String(s.Config.StackName + "-" + s.Config.SourceInstanceID),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{status},
			&sourceWidgets,
			{executions, lambdaErrors},
		},
	})
}

func (s *Stack) outputs(sg awsec2.ISecurityGroup) {
	arn := s.StateMachine.StateMachineArn()
	region := *s.Region()
	awscdk.NewCfnOutput(s.Stack, jsii.String("StateMachineArn"), &awscdk.CfnOutputProps{
		Value:       arn,
		Description: jsii.String("ARN of the seedrepl migration state machine"),
	})
	awscdk.NewCfnOutput(s.Stack, jsii.String("StateMachineConsoleUrl"), &awscdk.CfnOutputProps{
		Value: jsii.String(fmt.Sprintf("https://%s.console.aws.amazon.com/states/home?region=%s#/statemachines/view/%s",
			region, region, *arn)),
		Description: jsii.String("Step Functions console page of the state machine: start executions here"),
	})
	awscdk.NewCfnOutput(s.Stack, jsii.String("NotificationTopicArn"), &awscdk.CfnOutputProps{
		Value:       s.Topic.TopicArn(),
		Description: jsii.String("Subscribe operators (e-mail, chat) to this topic"),
	})
	awscdk.NewCfnOutput(s.Stack, jsii.String("LambdaSecurityGroupId"), &awscdk.CfnOutputProps{
		Value:       sg.SecurityGroupId(),
		Description: jsii.String("Allow PostgreSQL ingress from this group on the source and Aurora security groups"),
	})
	awscdk.NewCfnOutput(s.Stack, jsii.String("DMSSecretsAccessRoleArn"), &awscdk.CfnOutputProps{
		Value:       s.DMSSecretsRole.RoleArn(),
		Description: jsii.String("Role AWS DMS assumes to read the endpoint secrets"),
	})
}
