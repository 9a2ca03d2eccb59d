//go:build schematest_breaking

package postgres

// Built with the tag schematest_breaking, tokenbroker stands for a release
// whose schema change older binaries cannot read (it runs after
// zz_schematest_next.go's init: files initialise in name order).
func init() {
	migrations = append(migrations, `CREATE TABLE schematest_changed (x integer);`)
	minReader = len(migrations)
}
