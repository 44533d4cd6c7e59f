package localcloud

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// RDSSecret is the JSON Secrets Manager holds for an RDS database user.
type RDSSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Engine   string `json:"engine"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	DBName   string `json:"dbname,omitempty"`
}

type secret struct {
	arn, name string
	value     string
	versionID string
	created   time.Time
}

// SecretARN makes a Secrets Manager ARN for a name, with the six random
// characters AWS appends.
func SecretARN(name string) string {
	return "arn:aws:secretsmanager:" + Region + ":" + Account + ":secret:" + name + "-" + randomSuffix(6)
}

// secretName is the name inside a secret ARN (without AWS's random suffix).
func secretName(arn string) string {
	i := strings.Index(arn, ":secret:")
	if i < 0 {
		return arn
	}
	name := arn[i+len(":secret:"):]
	if j := strings.LastIndexByte(name, '-'); j >= 0 && len(name)-j == 7 {
		name = name[:j]
	}
	return name
}

// PutSecret registers (or replaces) a secret. arnOrName is a full secret ARN
// or a plain name (an ARN is then made for it). value is a string (stored as
// is) or anything else (stored as its JSON, e.g. an RDSSecret). It returns
// the secret's ARN.
func (s *Server) PutSecret(arnOrName string, value any) (string, error) {
	var text string
	switch v := value.(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", arnOrName, err)
		}
		text = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.lookupSecretLocked(arnOrName); old != nil {
		old.value, old.versionID = text, requestID()
		return old.arn, nil
	}
	arn := arnOrName
	if !strings.HasPrefix(arn, "arn:") {
		arn = SecretARN(arnOrName)
	}
	s.secrets[arn] = &secret{arn: arn, name: secretName(arn), value: text, versionID: requestID(), created: time.Now()}
	return arn, nil
}

// lookupSecretLocked finds a secret by ARN, name, or ARN without its suffix.
func (s *Server) lookupSecretLocked(id string) *secret {
	if sec := s.secrets[id]; sec != nil {
		return sec
	}
	for _, sec := range s.secrets {
		if sec.name == id || strings.TrimSuffix(sec.arn, sec.arn[len(sec.arn)-7:]) == id {
			return sec
		}
	}
	return nil
}

// rdsSecret reads a registered secret as RDS credentials.
func (s *Server) rdsSecret(id string) (RDSSecret, error) {
	s.mu.Lock()
	sec := s.lookupSecretLocked(id)
	s.mu.Unlock()
	var v RDSSecret
	if sec == nil {
		return v, fmt.Errorf("secret %s not found", id)
	}
	if err := json.Unmarshal([]byte(sec.value), &v); err != nil {
		return v, fmt.Errorf("secret %s is not RDS JSON: %w", id, err)
	}
	return v, nil
}

func (s *Server) secretsHandlers() map[string]jsonHandler {
	return map[string]jsonHandler{
		"GetSecretValue": s.getSecretValue,
		"DescribeSecret": s.describeSecret,
	}
}

func (s *Server) findSecret(in map[string]any) (*secret, *apiError) {
	id, _ := in["SecretId"].(string)
	if id == "" {
		return nil, badRequest("InvalidParameterException", "SecretId is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookupSecretLocked(id)
	if sec == nil {
		return nil, badRequest("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	cp := *sec
	return &cp, nil
}

func (s *Server) getSecretValue(in map[string]any) (any, *apiError) {
	sec, e := s.findSecret(in)
	if e != nil {
		return nil, e
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": sec.versionID, "SecretString": sec.value,
		"VersionStages": []string{"AWSCURRENT"}, "CreatedDate": epoch(sec.created)}, nil
}

func (s *Server) describeSecret(in map[string]any) (any, *apiError) {
	sec, e := s.findSecret(in)
	if e != nil {
		return nil, e
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "CreatedDate": epoch(sec.created),
		"LastChangedDate": epoch(sec.created), "VersionIdsToStages": map[string][]string{sec.versionID: {"AWSCURRENT"}}}, nil
}
