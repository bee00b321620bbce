// Package queueurl checks SQS queue URLs: a leaf shared by the service's
// configuration, the producer library and usagectl, so that the producer
// needs nothing of the service's server side for it.
package queueurl

import (
	"fmt"
	"net/url"
	"strings"
)

// Check checks that s looks like an SQS queue URL.
func Check(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%q is not a queue URL (expected https://sqs.<region>.amazonaws.com/<account>/<name>)", s)
	}
	return nil
}
