package client

import (
	"errors"
	"testing"

	"github.com/usage-event-service/usage-event-service/decision"
)

func TestReadReply(t *testing.T) {
	unhandled := "Unhandled"
	tests := []struct {
		name          string
		functionError *string
		payload       string
		want          decision.Status
		wantType      string // of a *FunctionError
		wantErr       bool   // another error
	}{
		{"an answer", nil, `{"status":"APPLIED","amount":2.5,"used":3}`, decision.Applied, "", false},
		{"a rejection", nil, `{"status":"REJECTED","reason":"LIMIT_EXCEEDED","message":"m"}`, decision.Rejected, "", false},
		{"Lambda's function error header", &unhandled, `{"errorType":"Runtime.ExitError","errorMessage":"exit status 2"}`, "", "Runtime.ExitError", false},
		{"the header and no type", &unhandled, `{"errorMessage":"Task timed out after 3.00 seconds"}`, "", "Unhandled", false},
		{"the header and no JSON", &unhandled, `boom`, "", "Unhandled", false},
		{"only the payload (the emulator)", nil, `{"errorType":"errorString","errorMessage":"the handler failed"}`, "", "errorString", false},
		{"a timeout's plain text (the emulator)", nil, `Task timed out after 1.00 seconds`, "", "", true},
		{"JSON that is no answer", nil, `{"batchItemFailures":[]}`, "", "", true},
		{"nothing", nil, ``, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := readReply(tt.functionError, []byte(tt.payload))
			var fe *FunctionError
			switch {
			case tt.wantType != "":
				if !errors.As(err, &fe) || fe.Type != tt.wantType || fe.Message == "" {
					t.Errorf("got %+v, %v; want a *FunctionError of type %s with a message", a, err, tt.wantType)
				}
			case tt.wantErr:
				if err == nil || errors.As(err, &fe) {
					t.Errorf("got %+v, %v; want an error that is no *FunctionError", a, err)
				}
			case err != nil || a.Status != tt.want:
				t.Errorf("got %+v, %v; want status %s", a, err, tt.want)
			}
		})
	}
}
