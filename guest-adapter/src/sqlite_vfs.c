/* SQLite's random numbers from the host's entropy, reseeded in every instance.
 *
 * SQLite seeds its PRNG once, from its VFS's xRandomness; on WASI the default VFS has no
 * /dev/urandom and falls back to the time, and whatever seed the snapshot took would be
 * shared by every instance made from it. pyeval_sqlite_use_host_entropy (before the
 * snapshot) points xRandomness at WASI's random_get; pyeval_sqlite_reseed (first call of
 * each instance) makes SQLite seed again, from that, when it next needs randomness. */

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

void pyeval_sqlite_use_host_entropy(void) {
    sqlite3_vfs *vfs = sqlite3_vfs_find(0);
    if (vfs != 0) {
        vfs->xRandomness = host_randomness;
    }
}

void pyeval_sqlite_reseed(void) {
    sqlite3_randomness(0, 0);
}
