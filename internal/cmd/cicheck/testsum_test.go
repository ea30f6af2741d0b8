package main

import (
	"strings"
	"testing"
)

func TestTestsum(t *testing.T) {
	race := `{"Action":"output","Package":"p","Test":"TestA","Output":"==================\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"WARNING: DATA RACE\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"Write at 0x1 by goroutine 7:\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"==================\n"}
`
	tests := []struct {
		name     string
		in       string
		code     int
		want     []string // in the report
		wantNone []string // not in the report
	}{
		{
			name: "pass",
			in: `{"Action":"output","Package":"p","Test":"TestA","Output":"noise\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`,
			want:     []string{"ok  \tp", "tests: 1 passed, 0 failed, 0 skipped"},
			wantNone: []string{"noise"},
		},
		{
			name: "failed test",
			in: `{"Action":"output","Package":"p","Test":"TestA","Output":"want 1, got 2\n"}
{"Action":"fail","Package":"p","Test":"TestA"}
{"Action":"fail","Package":"p"}
`,
			code: 1,
			want: []string{"want 1, got 2", "FAIL\tp", "tests: 0 passed, 1 failed"},
		},
		{
			name: "race outside of test execution",
			in: race + `{"Action":"output","Package":"p","Test":"TestA","Output":"other output\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"testing: race detected outside of test execution\n"}
{"Action":"fail","Package":"p"}
`,
			code:     1,
			want:     []string{"WARNING: DATA RACE\nWrite at 0x1 by goroutine 7:\n==================", "race detected outside", "FAIL\tp"},
			wantNone: []string{"other output"},
		},
		{
			name:     "race in a passed test of a passed package is not printed",
			in:       race + `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n" + `{"Action":"pass","Package":"p"}` + "\n",
			wantNone: []string{"DATA RACE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			if code := testsum(strings.NewReader(tt.in), &out); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(out.String(), w) {
					t.Errorf("report has %q:\n%s", w, out.String())
				}
			}
		})
	}
}
