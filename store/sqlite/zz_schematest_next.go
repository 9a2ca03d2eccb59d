//go:build schematest_next || schematest_breaking

package sqlite

// Built with the tag schematest_next, tokenbroker stands for its next
// release with a schema change that only adds: the rolling-upgrade test
// runs it beside this release on one state.
func init() { migrations = append(migrations, execAll(`CREATE TABLE schematest_added (x INTEGER)`)) }
