/* SQLite's operating-system layer as the sandbox needs it.
 *
 * Randomness: SQLite seeds its PRNG once, from its VFS's xRandomness; on WASI the unix VFS
 * has no /dev/urandom and falls back to the time, and whatever seed the snapshot took
 * would be shared by every instance made from it. The VFS draws from WASI's random_get
 * instead, and pyeval_sqlite_reseed (first call of each instance) makes SQLite seed again
 * when it next needs randomness.
 *
 * Locking: WASI has no file locks, so the default unix VFS reports every second
 * connection to a database file as "database is locked". A file on the scratch tree is the
 * instance's alone and the interpreter is single-threaded, so the default VFS is
 * "unix-none", which takes no locks. A database in a directory the host grants (a mount)
 * may be written by other instances at the same time: it is opened through
 * "unix-dotfile" instead, whose lock is a directory `<database>.lock` made atomically on
 * the host while a transaction runs (a busy database says "database is locked"). */

#include <sqlite3.h>
#include <stdlib.h>
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

/* guest-adapter/src/scratch: whether an absolute path is in a host directory. */
int pyeval_path_on_host(const char *path);

/* The VFS that locks with a directory, and the lock-free VFS's own way to open a file. */
static sqlite3_vfs *locking;
static int (*open_unlocked)(sqlite3_vfs *, sqlite3_filename, sqlite3_file *, int, int *);

/* Opens a database in a host directory with the locking VFS, everything else without
 * locks. The file's methods come from the VFS that opened it (SQLite's unix VFSes share
 * one file structure). */
static int open_file(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                     int *out_flags) {
    if (name != 0 && (flags & SQLITE_OPEN_MAIN_DB) != 0 && pyeval_path_on_host(name)) {
        return locking->xOpen(locking, name, file, flags, out_flags);
    }
    return open_unlocked(vfs, name, file, flags, out_flags);
}

void pyeval_sqlite_setup(void) {
    sqlite3_vfs *vfs = sqlite3_vfs_find("unix-none");
    locking = sqlite3_vfs_find("unix-dotfile");
    if (vfs == 0 || locking == 0 || vfs->szOsFile != locking->szOsFile) {
        abort();
    }
    if (vfs->xOpen != open_file) {
        open_unlocked = vfs->xOpen;
        vfs->xOpen = open_file;
    }
    vfs->xRandomness = host_randomness;
    sqlite3_vfs_register(vfs, 1);
}

void pyeval_sqlite_reseed(void) {
    sqlite3_randomness(0, 0);
}
