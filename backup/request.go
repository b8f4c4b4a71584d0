package backup

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// A backup request is how a process off the instance (the driver, before an upgrade) asks the
// instance for a backup of its state as it is now. The caller writes "<id> <reason>" to the
// request object in the stack's bucket; the instance's watcher polls that object, takes a
// consistent backup and uploads it with the metadata request=<id> and reason=<reason>; the caller
// finds that version among the backup object's versions. S3 is the channel because the instance
// can already read its bucket's backup prefix: no listener on the host, no new permission.

// requestID is what an id may hold: the instance reads it with shell tools, so nothing to quote.
var requestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Requested is the backup an instance took for a request.
type Requested struct {
	VersionID string
	TakenAt   time.Time
}

// Request writes the request object: id and reason, one line, which the instance's watcher reads.
func Request(ctx context.Context, client *s3.Client, bucket, key, id, reason string) error {
	if !requestID.MatchString(id) || !requestID.MatchString(reason) {
		return fmt.Errorf("backup request %q %q: id and reason are 1 to 64 of A-Z a-z 0-9 . _ -", id, reason)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(id + " " + reason + "\n"),
		ContentType: aws.String("text/plain"),
	}); err != nil {
		return fmt.Errorf("writing the backup request s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Withdraw removes the request object, so that no instance answers it again.
func Withdraw(ctx context.Context, client *s3.Client, bucket, key string) error {
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("withdrawing the backup request s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// ErrNoAnswer is Await's error when no backup answered the request in time.
var ErrNoAnswer = errors.New("no backup answered the request")

// Await polls the versions of the backup object (key) every poll until one carries the request's
// id, and returns it; after budget it returns an error wrapping ErrNoAnswer.
// Versions uploaded since since (less a minute for clocks that differ) are the ones it reads.
func Await(ctx context.Context, client *s3.Client, bucket, key, id string, since time.Time, poll, budget time.Duration) (Requested, error) {
	deadline := time.Now().Add(budget)
	read := map[string]bool{}
	for {
		found, err := answer(ctx, client, bucket, key, id, since.Add(-time.Minute), read)
		if err != nil || found.VersionID != "" {
			return found, err
		}
		if time.Now().Add(poll).After(deadline) {
			return Requested{}, fmt.Errorf("%w %s in %s", ErrNoAnswer, id, budget)
		}
		select {
		case <-ctx.Done():
			return Requested{}, fmt.Errorf("waiting for the answer to backup request %s: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// answer looks for the version of key that answers id among the versions uploaded after since;
// read holds the versions looked at already, whatever they answered.
func answer(ctx context.Context, client *s3.Client, bucket, key, id string, since time.Time, read map[string]bool) (Requested, error) {
	pages := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	var fresh []s3types.ObjectVersion
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Requested{}, fmt.Errorf("listing the backups in s3://%s/%s: %w", bucket, key, err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) == key && !read[aws.ToString(v.VersionId)] && aws.ToTime(v.LastModified).After(since) {
				fresh = append(fresh, v)
			}
		}
	}
	for _, v := range fresh {
		version := aws.ToString(v.VersionId)
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(version)})
		if err != nil {
			return Requested{}, fmt.Errorf("reading backup version %s: %w", version, err)
		}
		read[version] = true
		if head.Metadata["request"] == id {
			taken, _ := time.Parse(time.RFC3339, head.Metadata["created"])
			return Requested{VersionID: version, TakenAt: taken}, nil
		}
	}
	return Requested{}, nil
}
