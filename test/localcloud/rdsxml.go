package localcloud

// The RDS Query protocol: form-encoded requests (Action=…, Version=2014-10-31)
// and XML replies. Element names follow the SDK's deserializers
// (service/rds deserializers.go): lists wrap members named after the type
// (DBSnapshots>DBSnapshot, TagList>Tag, DBClusterMembers>DBClusterMember, …).

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const rdsNamespace = "http://rds.amazonaws.com/doc/2014-10-31/"

type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return errf(http.StatusNotFound, code, format, args...)
}

func badRequest(code, format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, code, format, args...)
}

func writeRDSError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	var b bytes.Buffer
	b.WriteString(`<ErrorResponse xmlns="` + rdsNamespace + `"><Error><Type>` + typ + `</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(e.code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(e.message))
	b.WriteString(`</Message></Error><RequestId>` + requestID() + `</RequestId></ErrorResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(b.Bytes())
}

// writeRDS writes <ActionResponse><ActionResult>inner…</ActionResult><ResponseMetadata>…
func writeRDS(w http.ResponseWriter, action string, inner ...any) {
	var b bytes.Buffer
	b.WriteString(`<` + action + `Response xmlns="` + rdsNamespace + `"><` + action + `Result>`)
	for _, v := range inner {
		if v == nil {
			continue
		}
		out, err := xml.Marshal(v)
		if err != nil {
			writeRDSError(w, errf(500, "InternalFailure", "local cloud: marshal %s: %v", action, err))
			return
		}
		b.Write(out)
	}
	b.WriteString(`</` + action + `Result><ResponseMetadata><RequestId>` + requestID() +
		`</RequestId></ResponseMetadata></` + action + `Response>`)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b.Bytes())
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// ---------------------------------------------------------------- XML shapes

type xTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xEndpoint struct {
	Address      string `xml:"Address"`
	Port         int    `xml:"Port"`
	HostedZoneId string `xml:"HostedZoneId"`
}

type xParamGroupStatus struct {
	DBParameterGroupName string `xml:"DBParameterGroupName"`
	ParameterApplyStatus string `xml:"ParameterApplyStatus"`
}

type xMasterUserSecret struct {
	SecretArn    string `xml:"SecretArn"`
	SecretStatus string `xml:"SecretStatus"`
}

type xInstance struct {
	XMLName               xml.Name            `xml:"DBInstance"`
	DBInstanceIdentifier  string              `xml:"DBInstanceIdentifier"`
	DBInstanceArn         string              `xml:"DBInstanceArn"`
	DBInstanceClass       string              `xml:"DBInstanceClass"`
	Engine                string              `xml:"Engine"`
	EngineVersion         string              `xml:"EngineVersion"`
	DBInstanceStatus      string              `xml:"DBInstanceStatus"`
	MasterUsername        string              `xml:"MasterUsername,omitempty"`
	DBName                string              `xml:"DBName,omitempty"`
	Endpoint              *xEndpoint          `xml:"Endpoint,omitempty"`
	AllocatedStorage      int                 `xml:"AllocatedStorage"`
	InstanceCreateTime    string              `xml:"InstanceCreateTime,omitempty"`
	BackupRetentionPeriod int                 `xml:"BackupRetentionPeriod"`
	DBParameterGroups     []xParamGroupStatus `xml:"DBParameterGroups>DBParameterGroup"`
	AvailabilityZone      string              `xml:"AvailabilityZone"`
	MultiAZ               bool                `xml:"MultiAZ"`
	PubliclyAccessible    bool                `xml:"PubliclyAccessible"`
	StorageType           string              `xml:"StorageType"`
	StorageEncrypted      bool                `xml:"StorageEncrypted"`
	DbiResourceId         string              `xml:"DbiResourceId"`
	DBClusterIdentifier   string              `xml:"DBClusterIdentifier,omitempty"`
	MasterUserSecret      *xMasterUserSecret  `xml:"MasterUserSecret,omitempty"`
	TagList               []xTag              `xml:"TagList>Tag"`
}

type xClusterMember struct {
	DBInstanceIdentifier          string `xml:"DBInstanceIdentifier"`
	IsClusterWriter               bool   `xml:"IsClusterWriter"`
	DBClusterParameterGroupStatus string `xml:"DBClusterParameterGroupStatus"`
	PromotionTier                 int    `xml:"PromotionTier"`
}

type xClusterPending struct {
	EngineVersion string `xml:"EngineVersion,omitempty"`
}

type xCluster struct {
	XMLName                 xml.Name           `xml:"DBCluster"`
	DBClusterIdentifier     string             `xml:"DBClusterIdentifier"`
	DBClusterArn            string             `xml:"DBClusterArn"`
	Status                  string             `xml:"Status"`
	Engine                  string             `xml:"Engine"`
	EngineVersion           string             `xml:"EngineVersion"`
	EngineMode              string             `xml:"EngineMode"`
	Endpoint                string             `xml:"Endpoint,omitempty"`
	ReaderEndpoint          string             `xml:"ReaderEndpoint,omitempty"`
	Port                    int                `xml:"Port,omitempty"`
	MasterUsername          string             `xml:"MasterUsername,omitempty"`
	DatabaseName            string             `xml:"DatabaseName,omitempty"`
	DBClusterParameterGroup string             `xml:"DBClusterParameterGroup"`
	ClusterCreateTime       string             `xml:"ClusterCreateTime,omitempty"`
	AllocatedStorage        int                `xml:"AllocatedStorage"`
	MultiAZ                 bool               `xml:"MultiAZ"`
	StorageEncrypted        bool               `xml:"StorageEncrypted"`
	DbClusterResourceId     string             `xml:"DbClusterResourceId"`
	DBClusterMembers        []xClusterMember   `xml:"DBClusterMembers>DBClusterMember"`
	PendingModifiedValues   *xClusterPending   `xml:"PendingModifiedValues,omitempty"`
	MasterUserSecret        *xMasterUserSecret `xml:"MasterUserSecret,omitempty"`
	TagList                 []xTag             `xml:"TagList>Tag"`
}

type xSnapshot struct {
	XMLName              xml.Name `xml:"DBSnapshot"`
	DBSnapshotIdentifier string   `xml:"DBSnapshotIdentifier"`
	DBInstanceIdentifier string   `xml:"DBInstanceIdentifier"`
	DBSnapshotArn        string   `xml:"DBSnapshotArn"`
	SnapshotCreateTime   string   `xml:"SnapshotCreateTime,omitempty"`
	InstanceCreateTime   string   `xml:"InstanceCreateTime,omitempty"`
	Engine               string   `xml:"Engine"`
	EngineVersion        string   `xml:"EngineVersion"`
	Status               string   `xml:"Status"`
	Port                 int      `xml:"Port"`
	AllocatedStorage     int      `xml:"AllocatedStorage"`
	MasterUsername       string   `xml:"MasterUsername,omitempty"`
	SnapshotType         string   `xml:"SnapshotType"`
	PercentProgress      int      `xml:"PercentProgress"`
	StorageType          string   `xml:"StorageType"`
	Encrypted            bool     `xml:"Encrypted"`
	DbiResourceId        string   `xml:"DbiResourceId"`
	TagList              []xTag   `xml:"TagList>Tag"`
}

type xParameter struct {
	ParameterName  string `xml:"ParameterName"`
	ParameterValue string `xml:"ParameterValue,omitempty"`
	Description    string `xml:"Description,omitempty"`
	Source         string `xml:"Source"`
	ApplyType      string `xml:"ApplyType"`
	DataType       string `xml:"DataType"`
	IsModifiable   bool   `xml:"IsModifiable"`
	ApplyMethod    string `xml:"ApplyMethod"`
}

// xList wraps members in a named element: <Name><Member>…</Member>…</Name>.
type xList struct {
	name, member string
	items        []any
}

func (l xList) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: l.name}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, it := range l.items {
		if err := e.EncodeElement(it, xml.StartElement{Name: xml.Name{Local: l.member}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func list[T any](name, member string, items []T) xList {
	l := xList{name: name, member: member}
	for _, it := range items {
		l.items = append(l.items, it)
	}
	return l
}

// ---------------------------------------------------------------- form input

type form url.Values

func (f form) str(key string) string { return url.Values(f).Get(key) }

func (f form) boolean(key string) bool { return strings.EqualFold(f.str(key), "true") }

func (f form) integer(key string) (int, bool) {
	v, err := strconv.Atoi(f.str(key))
	return v, err == nil
}

// members reads prefix.1, prefix.2, … (e.g. "TagKeys.member").
func (f form) members(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[prefix+"."+strconv.Itoa(i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

func (f form) tags(prefix string) []tag {
	var out []tag
	for i := 1; ; i++ {
		p := prefix + ".Tag." + strconv.Itoa(i) + "."
		k, ok := f[p+"Key"]
		if !ok || len(k) == 0 {
			return out
		}
		out = append(out, tag{Key: k[0], Value: f.str(p + "Value")})
	}
}

type filter struct {
	name   string
	values []string
}

func (f form) filters() []filter {
	var out []filter
	for i := 1; ; i++ {
		p := "Filters.Filter." + strconv.Itoa(i) + "."
		n, ok := f[p+"Name"]
		if !ok || len(n) == 0 {
			return out
		}
		out = append(out, filter{name: n[0], values: f.members(p + "Values.Value")})
	}
}

var identRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,62}$`)

// rdsIdentifier validates an identifier as RDS does and lower-cases it.
func rdsIdentifier(param, v string) (string, *apiError) {
	if v == "" {
		return "", badRequest("MissingParameter", "The request must contain the parameter %s", param)
	}
	if !identRE.MatchString(v) || strings.Contains(v, "--") || strings.HasSuffix(v, "-") {
		return "", badRequest("InvalidParameterValue", "The parameter %s is not a valid identifier. Identifiers must begin with a letter; "+
			"must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens.", param)
	}
	return strings.ToLower(v), nil
}

// rdsARN is arn:aws:rds:us-east-1:000000000000:<kind>:<id>.
func rdsARN(kind, id string) string {
	return "arn:aws:rds:" + Region + ":" + Account + ":" + kind + ":" + id
}

// idOrARN accepts "id" or an RDS ARN of the given kind and returns the id.
func idOrARN(v, kind string) (string, bool) {
	if !strings.HasPrefix(v, "arn:") {
		return strings.ToLower(v), true
	}
	parts := strings.SplitN(v, ":", 7)
	if len(parts) != 7 || parts[2] != "rds" || parts[5] != kind {
		return "", false
	}
	return strings.ToLower(parts[6]), true
}

func matchFilter(fs []filter, name string, values ...string) bool {
	for _, f := range fs {
		if f.name != name {
			continue
		}
		ok := false
		for _, want := range f.values {
			for _, v := range values {
				if strings.EqualFold(want, v) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
