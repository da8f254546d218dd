package dsl

import (
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// SARIF 2.1.0 output, for code-scanning uploads. Every code is a rule;
// columns count Unicode code points, as the text format does.

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	ColumnKind  string            `json:"columnKind"`
	Results     []sarifResult     `json:"results"`
}

// sarifInvocation says whether the run checked everything it was given:
// a path it could not read makes it unsuccessful, with a notification
// naming the path, so that a viewer does not take the run's results for
// the whole of them.
type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifMessage      `json:"shortDescription"`
	FullDescription      sarifMessage      `json:"fullDescription"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	HelpURI              string            `json:"helpUri"`
	Properties           map[string]string `json:"properties,omitempty"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID           string          `json:"ruleId"`
	RuleIndex        int             `json:"ruleIndex"`
	Level            string          `json:"level"`
	Message          sarifMessage    `json:"message"`
	Locations        []sarifLocation `json:"locations"`
	RelatedLocations []sarifLocation `json:"relatedLocations,omitempty"`
}

type sarifLocation struct {
	ID               *int                  `json:"id,omitempty"`
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	Message          *sarifMessage         `json:"message,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"` // none for a whole file
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
	EndColumn   int `json:"endColumn"`
}

// docsURL is where each code is explained.
const docsURL = "https://github.com/fsmc/fsmc/blob/main/docs/language.md"

func sarifLevel(s Severity) string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// sarifURI turns a file path into a URI: a relative path into a
// relative reference (each segment escaped, ':' too, or "x:y.fsm" would
// read as scheme "x"), an absolute one into a file: URI.
func sarifURI(path string) string {
	slashed := filepath.ToSlash(path)
	if filepath.IsAbs(path) {
		if !strings.HasPrefix(slashed, "/") {
			slashed = "/" + slashed // a Windows drive: file:///C:/...
		}
		return (&url.URL{Scheme: "file", Path: slashed}).String()
	}
	parts := strings.Split(slashed, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(url.PathEscape(p), ":", "%3A")
	}
	return strings.Join(parts, "/")
}

func sarifLocationOf(r Range) sarifPhysicalLocation {
	return sarifPhysicalLocation{
		ArtifactLocation: sarifArtifactLocation{URI: sarifURI(r.File)},
		Region:           &sarifRegion{StartLine: r.Start.Line, StartColumn: r.Start.Column, EndLine: r.End.Line, EndColumn: r.End.Column},
	}
}

// WriteSARIF renders r as a SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, r *Report, version string) error {
	driver := sarifDriver{Name: "fsmc", Version: version, InformationURI: "https://github.com/fsmc/fsmc", Rules: []sarifRule{}}
	ruleIndex := map[Code]int{}
	for i, info := range Codes {
		ruleIndex[info.Code] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID: string(info.Code), Name: info.Name,
			ShortDescription:     sarifMessage{Text: info.Summary},
			FullDescription:      sarifMessage{Text: info.Summary},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(info.Severity)},
			HelpURI:              docsURL + "#" + strings.ToLower(string(info.Code)),
		})
	}
	inv := sarifInvocation{ExecutionSuccessful: len(r.Unreadable) == 0}
	for _, u := range r.Unreadable {
		n := sarifNotification{Level: "error", Message: sarifMessage{Text: u.Message}}
		if u.Path != "" {
			n.Locations = []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(u.Path)}}}}
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Invocations: []sarifInvocation{inv}, ColumnKind: "unicodeCodePoints", Results: []sarifResult{}}
	for _, d := range r.Diagnostics {
		msg := d.Message
		if d.Suggestion != "" {
			msg += " (did you mean \"" + d.Suggestion + "\"?)"
		}
		res := sarifResult{RuleID: string(d.Code), RuleIndex: ruleIndex[d.Code], Level: sarifLevel(d.Severity),
			Message: sarifMessage{Text: msg}, Locations: []sarifLocation{{PhysicalLocation: sarifLocationOf(d.Range)}}}
		for i, n := range d.Related {
			id := i + 1
			res.RelatedLocations = append(res.RelatedLocations, sarifLocation{ID: &id, PhysicalLocation: sarifLocationOf(n.Range), Message: &sarifMessage{Text: n.Message}})
		}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}
