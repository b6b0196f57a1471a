package options

import "testing"

func TestWhoamiValidate(t *testing.T) {
	tests := []struct {
		output string
		want   []string
	}{
		{output: ""}, {output: "text"}, {output: "json"}, {output: "yaml"},
		{output: "wide", want: []string{`--output must be text, json or yaml, not "wide"`}},
	}
	for _, tc := range tests {
		t.Run(tc.output, func(t *testing.T) {
			checkErrors(t, (&Whoami{Output: tc.output}).Validate(), tc.want)
		})
	}
}
