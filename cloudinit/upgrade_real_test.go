package cloudinit

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/clawdeploy/clawdeploy/internal/openaifake"
	"github.com/clawdeploy/clawdeploy/internal/openclaw"
	"github.com/clawdeploy/clawdeploy/setup"
)

// TestTheRealGatewayUpgradedAndRolledBack runs an upgrade of the real OpenClaw as the product
// does it, from an older release (tools/openclaw/previous) to the one it deploys by default, and
// the way back:
//
//   - a host running the older release onboards with the setup's flags and holds a conversation;
//   - the pre-upgrade checkpoint: the instance's backup script (reason pre-upgrade) while its
//     gateway serves, an S3 version of the backup object;
//   - the upgrade: the instance is replaced and its data volume moves to the new one, which runs
//     the pinned release; its setup does not onboard again, the gateway opens the older release's
//     state (its migrations run) and a turn carries the earlier messages; a turn is held after the
//     upgrade, and the new instance's scheduled backup becomes the newest;
//   - the rollback: the checkpoint's backup made the newest again (a copy of its S3 version, which
//     the versioned bucket keeps), restored by the instance's script onto a new host running the
//     older release: it starts on it, and a turn carries the conversation from before the upgrade
//     and not the turn held after it.
func TestTheRealGatewayUpgradedAndRolledBack(t *testing.T) {
	t.Parallel()
	pinned, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	previous, err := openclaw.Previous()
	if err != nil {
		t.Fatal(err)
	}
	if previous.Version >= pinned.Version {
		t.Fatalf("tools/openclaw/previous holds OpenClaw %s, not older than the pinned %s", previous.Version, pinned.Version)
	}
	m := realStack(t)
	bucket := "openclaw-dev-setup"
	const word = "heron"
	model := secretWordModel(t, word)
	step := steps(t)

	old := newRealHost(t, previous, m, 0)
	var checkpoint string // the pre-upgrade backup's S3 version
	step("state made by the older release", func(t *testing.T) {
		old.on(t).mustRun(mounts{data: true}, "openclaw-restore.sh")
		_, healthy, _ := old.setUp()
		t.Logf("OpenClaw %s: setup complete after %s", previous.Version, healthy.Round(time.Second))
		conversation(t, old, model, word)
		old.env = append(old.env, "OPENCLAW_BACKUP_REASON=pre-upgrade")
		old.mustRun(mounts{data: true}, "openclaw-backup.sh")
		head, err := m.S3().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(BackupObject)})
		if err != nil || head.Metadata["reason"] != "pre-upgrade" || aws.ToString(head.VersionId) == "" {
			t.Fatalf("the pre-upgrade backup: %v %v", head, err)
		}
		checkpoint = aws.ToString(head.VersionId)
		if _, err := old.stop(); err != nil {
			t.Fatal(err)
		}
	})

	up := newRealHost(t, pinned, m, old.port)
	step("upgraded to the pinned release", func(t *testing.T) {
		up.on(t)
		// The data volume moves to the replacement instance.
		if err := os.RemoveAll(up.data); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(old.data, up.data); err != nil {
			t.Fatal(err)
		}
		oldSchema := schemaOf(t, up.data)
		restore := up.mustRun(mounts{data: true}, "openclaw-restore.sh")
		if !strings.Contains(restore.stderr, "restore already complete") {
			t.Errorf("the moved volume was restored over:\n%s", restore.stderr)
		}
		_, healthy, _ := up.setUp()
		t.Logf("OpenClaw %s on %s's state: setup complete after %s", pinned.Version, previous.Version, healthy.Round(time.Second))
		log, _ := os.ReadFile(filepath.Join(up.setupRoot, setup.LogFile))
		if !strings.Contains(string(log), "openclaw.json exists: not onboarding again") {
			t.Errorf("the upgraded host onboarded again:\n%s", log)
		}
		askedWithHistory(t, up, model, word)
		for db, after := range schemaOf(t, up.data) {
			before := oldSchema[db]
			if after.version <= before.version {
				t.Errorf("%s: user_version %d under %s, %d before: the pinned release migrated nothing", db, after.version, pinned.Version, before.version)
			}
			var added []string
			for _, table := range after.tables {
				if !slices.Contains(before.tables, table) {
					added = append(added, table)
				}
			}
			t.Logf("%s migrated from user_version %d (%s) to %d (%s), tables added: %s", db, before.version, previous.Version,
				after.version, pinned.Version, strings.Join(added, " "))
		}
		turn(t, up, "Remember this too: the upgrade happened.")
		up.env = append(up.env, "OPENCLAW_BACKUP_REASON=scheduled")
		up.mustRun(mounts{data: true}, "openclaw-backup.sh")
		if _, err := up.stop(); err != nil {
			t.Fatal(err)
		}
	})

	back := newRealHost(t, previous, m, old.port)
	step("rolled back to the pre-upgrade backup on the older release", func(t *testing.T) {
		back.on(t)
		source := bucket + "/" + BackupObject + "?versionId=" + url.QueryEscape(checkpoint)
		if _, err := m.S3().CopyObject(t.Context(), &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String(BackupObject),
			CopySource: &source, MetadataDirective: s3types.MetadataDirectiveCopy}); err != nil {
			t.Fatal(err)
		}
		back.mustRun(mounts{data: true}, "openclaw-restore.sh")
		back.setUp()
		requests := askedWithHistory(t, back, model, word)
		for _, msg := range requests[len(requests)-1].Messages {
			if strings.Contains(msg.Text(), "the upgrade happened") {
				t.Errorf("the rolled-back state holds the turn held after the upgrade: %q", msg.Text())
			}
		}
	})
}

// askedWithHistory asks r's gateway for the secret word and checks that the model was sent the
// message that told it; it returns the model's requests for that turn.
func askedWithHistory(t *testing.T, r *realHost, model *openaifake.Server, word string) []openaifake.Request {
	t.Helper()
	before := len(model.Requests())
	if answer := turn(t, r, "What is the secret word?"); answer != "The secret word is "+word+"." {
		t.Errorf("the answer is %q: the earlier messages were not sent", answer)
	}
	requests := model.Requests()[before:]
	if len(requests) == 0 {
		t.Fatal("the gateway never asked the model")
	}
	told := false
	for _, msg := range requests[len(requests)-1].Messages {
		told = told || msg.Role == "user" && strings.Contains(msg.Text(), "] The secret word is "+word+".")
	}
	if !told {
		t.Error("the model was not sent the earlier message")
	}
	return requests
}

// schema is a SQLite database's user_version and tables.
type schema struct {
	version int
	tables  []string
}

// schemaOf reads the schema of the state's two databases, by their path under data.
func schemaOf(t *testing.T, data string) map[string]schema {
	t.Helper()
	out := map[string]schema{}
	for _, db := range []string{".openclaw/state/openclaw.sqlite", ".openclaw/agents/main/agent/openclaw-agent.sqlite"} {
		path := filepath.Join(data, db)
		version, err := strconv.Atoi(sqlite(t, path, "PRAGMA user_version"))
		if err != nil {
			t.Fatalf("%s: %v", db, err)
		}
		out[db] = schema{version: version, tables: strings.Fields(sqlite(t, path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))}
	}
	return out
}
