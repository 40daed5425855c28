/* Reseeding numpy's legacy global generator (np.random.rand and the like) when an instance
 * wakes, as `np.random.seed(key)` seeds it from eight 32-bit words of the host's entropy,
 * but through numpy's C function directly: the Python-level checks of the key cost about a
 * fifth of a fresh evaluation's work here.
 *
 * Only a build with numpy links `mt19937_init_by_array`; in others it is absent (a weak
 * reference) and nothing is kept. The generator's state is kept once, before the snapshot,
 * from the capsule of `numpy.random.mtrand._rand`'s bit generator (an object of the
 * snapshot, which lives as long as the instance): code run later can neither point the
 * reseeding elsewhere nor do more with it than draw a new seed. */

#include "Python.h"
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* numpy/random/bitgen.h: what a bit generator's capsule points to (its first field). */
typedef struct {
    void *state;
} bitgen_head;

extern void mt19937_init_by_array(void *state, uint32_t *init_key, int key_length)
    __attribute__((weak));

static void *kept_state;

/* keep_mt19937(capsule) -> None: the state to reseed; once, before the snapshot. */
static PyObject *keep_mt19937(PyObject *self, PyObject *capsule)
{
    (void)self;
    if (kept_state != NULL || mt19937_init_by_array == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "keep_mt19937: already kept, or no numpy");
        return NULL;
    }
    bitgen_head *bitgen = PyCapsule_GetPointer(capsule, "BitGenerator");
    if (bitgen == NULL) {
        return NULL;
    }
    kept_state = bitgen->state;
    Py_RETURN_NONE;
}

/* reseed_mt19937() -> None: 256 bits of the host's entropy as the kept state's seed. */
static PyObject *reseed_mt19937(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (kept_state == NULL) {
        Py_RETURN_NONE;
    }
    uint32_t key[8];
    if (getentropy(key, sizeof key) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    mt19937_init_by_array(kept_state, key, 8);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"keep_mt19937", keep_mt19937, METH_O, NULL},
    {"reseed_mt19937", reseed_mt19937, METH_NOARGS, NULL},
};

/* A new reference to the function of `methods` at `index` (0: keep, 1: reseed). */
PyObject *pyeval_mt19937_function(int index)
{
    return PyCFunction_New(&methods[index], NULL);
}
