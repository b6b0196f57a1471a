package options

import "testing"

func TestLogoutAllValidate(t *testing.T) {
	file := existingFile(t)
	tests := []struct {
		name string
		edit func(o *LogoutAll)
		want []string
	}{
		{name: "--all", edit: func(*LogoutAll) {}},
		{name: "--all with an issuer CA", edit: func(o *LogoutAll) { o.IssuerCAFile = file }},
		{name: "neither --all nor a login", edit: func(o *LogoutAll) { o.All = false }, want: []string{"say which login to end: kip logout oidc (or static) with the flags of kip login"}},
		{name: "no cache dir", edit: func(o *LogoutAll) { o.CacheDir = "" }, want: []string{"--cache-dir is required"}},
		{name: "missing issuer CA", edit: func(o *LogoutAll) { o.IssuerCAFile = "/nonexistent" }, want: []string{"--issuer-ca-file: stat /nonexistent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewLogoutAll()
			o.All, o.CacheDir = true, t.TempDir()
			tc.edit(o)
			checkErrors(t, o.Validate(), tc.want)
		})
	}
}
