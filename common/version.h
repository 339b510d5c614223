/*
 * version.h: what this build is: the release (the VERSION file) and the
 * commit it was built from (git, or "unknown" outside a git tree; a
 * trailing "+" when the tree had uncommitted changes). Shown by every
 * program's --version, in tally_build_info on /metrics and in the ledger.
 */
#ifndef TALLY_VERSION_H
#define TALLY_VERSION_H

extern const char tally_version[];
extern const char tally_revision[];

#endif
