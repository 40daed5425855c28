/* SQLite's operating-system layer as the sandbox needs it.
 *
 * Randomness: SQLite seeds its PRNG once, from its VFS's xRandomness; on WASI the unix VFS
 * has no /dev/urandom and falls back to the time, and whatever seed the snapshot took
 * would be shared by every instance made from it. The VFS draws from WASI's random_get
 * instead, and pyeval_sqlite_reseed (first call of each instance) makes SQLite seed again
 * when it next needs randomness.
 *
 * Locking: WASI has no file locks, so the default unix VFS reports every second
 * connection to a database file as "database is locked". The interpreter is single-
 * threaded and alone with its files, so the default VFS is "unix-none", which takes no
 * locks. */

#include <sqlite3.h>
#include <unistd.h>

static int host_randomness(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    int done = 0;
    while (done < n) {
        /* getentropy takes at most 256 bytes at a time. */
        int chunk = n - done > 256 ? 256 : n - done;
        if (getentropy(out + done, (size_t)chunk) != 0) {
            break;
        }
        done += chunk;
    }
    return done;
}

void pyeval_sqlite_setup(void) {
    sqlite3_vfs *vfs = sqlite3_vfs_find("unix-none");
    if (vfs == 0) {
        vfs = sqlite3_vfs_find(0);
    }
    if (vfs != 0) {
        vfs->xRandomness = host_randomness;
        sqlite3_vfs_register(vfs, 1);
    }
}

void pyeval_sqlite_reseed(void) {
    sqlite3_randomness(0, 0);
}
