package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
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
// finds that version among the backup object's versions. A backup that fails is answered with
// "<id> <why>" in the object next to the request (FailureKey), so that the caller stops waiting.
// S3 is the channel because the instance can already read and write its bucket's backup prefix:
// no listener on the host, no new permission.

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

// FailureKey is where the instance answers the request at requestKey when its backup failed.
func FailureKey(requestKey string) string { return requestKey + ".failed" }

// Withdraw removes the request object, and a failure answer to it, so that no instance answers
// it again and no later request reads that answer.
func Withdraw(ctx context.Context, client *s3.Client, bucket, key string) error {
	for _, k := range []string{key, FailureKey(key)} {
		if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			return fmt.Errorf("withdrawing the backup request s3://%s/%s: %w", bucket, k, err)
		}
	}
	return nil
}

// ErrNoAnswer is Await's error when no backup answered the request in time.
var ErrNoAnswer = errors.New("no backup answered the request")

// FailedError is Await's error when the instance answered that the requested backup failed.
type FailedError struct {
	ID, Why string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("the instance's backup for request %s failed: %s", e.ID, e.Why)
}

// Await polls the versions of the backup object (key) every poll until one carries the request's
// id, and returns it; a failure answer to the request at requestKey ends the wait at once with a
// *FailedError; after budget it returns an error wrapping ErrNoAnswer.
// Versions uploaded since since (less a minute for clocks that differ) are the ones it reads.
func Await(ctx context.Context, client *s3.Client, bucket, key, requestKey, id string, since time.Time, poll, budget time.Duration) (Requested, error) {
	deadline := time.Now().Add(budget)
	read := map[string]bool{}
	for {
		found, err := answer(ctx, client, bucket, key, id, since.Add(-time.Minute), read)
		if err != nil || found.VersionID != "" {
			return found, err
		}
		if err := failure(ctx, client, bucket, FailureKey(requestKey), id); err != nil {
			return Requested{}, err
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

// failure returns a *FailedError when the object at key answers id with a failure; nil when
// there is none, or it answers another request.
func failure(ctx context.Context, client *s3.Client, bucket, key, id string) error {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var missing *s3types.NoSuchKey
	if errors.As(err, &missing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	defer func() { _ = out.Body.Close() }()
	line, err := io.ReadAll(io.LimitReader(out.Body, 1024))
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	answered, why, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
	if answered != id {
		return nil
	}
	return &FailedError{ID: id, Why: cmp.Or(why, "no reason given")}
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
