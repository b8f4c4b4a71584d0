package components

import (
	"encoding/json"
	"fmt"
)

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a policy document.
type Statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal any                       `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// policy returns statements as a policy document in JSON.
func policy(statements ...Statement) (string, error) {
	b, err := json.Marshal(PolicyDocument{Version: "2012-10-17", Statement: statements})
	if err != nil {
		return "", fmt.Errorf("encoding a policy document: %w", err)
	}
	return string(b), nil
}

// assumeRolePolicy lets an AWS service assume a role.
func assumeRolePolicy(service string) (string, error) {
	return policy(Statement{
		Effect:    "Allow",
		Principal: map[string]string{"Service": service},
		Action:    []string{"sts:AssumeRole"},
	})
}
