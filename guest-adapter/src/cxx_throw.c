// C++ exceptions in a build without WebAssembly exception handling (packages' C++, such
// as numpy's): code compiled with -fexceptions calls these to throw, and nothing could
// catch. The evaluation ends with a message instead of an undefined import.

#include <stdio.h>
#include <stdlib.h>

void *__cxa_allocate_exception(size_t size) {
    (void)size;
    fputs("pyeval: a C++ exception was thrown in a package's native code; this build "
          "cannot catch it\n", stderr);
    fflush(stderr);
    abort();
}

void __cxa_throw(void *exception, void *type, void (*destructor)(void *)) {
    (void)exception;
    (void)type;
    (void)destructor;
    abort();
}
