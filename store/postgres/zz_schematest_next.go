//go:build schematest_next || schematest_breaking

package postgres

// Built with the tag schematest_next, tokenbroker stands for its next
// release with a schema change that only adds: the rolling-upgrade test
// runs it beside this release on one database.
func init() { migrations = append(migrations, `CREATE TABLE schematest_added (x integer);`) }
