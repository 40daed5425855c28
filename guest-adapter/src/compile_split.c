/* Compiling evaluated code straight from source into two code objects: the statements,
 * and a trailing expression statement on its own, whose value the evaluation returns.
 *
 * Doing the same through the `ast` module builds the tree as Python objects and converts
 * it back, which costs about as much as compiling; here the parser's tree is split in C.
 */

#define Py_BUILD_CORE 1
#include "Python.h"
#include "pycore_ast.h"
#include "pycore_compile.h"
#include "pycore_parser.h"
#include "pycore_pyarena.h"

/* compile_split(source: str, filename: str) -> (body, last)
 *
 * `body` is the code of every statement but a trailing expression statement (None when
 * there are none); `last` is that expression compiled in "eval" mode (None when the source
 * does not end with one). Errors are raised as `compile()` raises them. */
static PyObject *compile_split(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "compile_split(source: str, filename: str)");
        return NULL;
    }
    PyObject *filename = args[1];
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(args[0], &size);
    if (text == NULL) {
        return NULL;
    }
    if (strlen(text) != (size_t)size) {
        PyErr_SetString(PyExc_SyntaxError, "source code string cannot contain null bytes");
        return NULL;
    }

    PyArena *arena = _PyArena_New();
    if (arena == NULL) {
        return NULL;
    }
    PyObject *body = NULL, *last = NULL, *result = NULL;
    PyCompilerFlags flags = _PyCompilerFlags_INIT;
    /* As compile() does for str source: the text is already decoded, so a coding cookie
     * or byte order mark in it means nothing. `await` is allowed at the top level, as in
     * notebooks and asyncio's REPL: such code compiles to a coroutine's code. */
    flags.cf_flags = PyCF_SOURCE_IS_UTF8 | PyCF_IGNORE_COOKIE | PyCF_ALLOW_TOP_LEVEL_AWAIT;

    mod_ty module = _PyParser_ASTFromString(text, filename, Py_file_input, &flags, arena);
    if (module == NULL) {
        goto done;
    }
    asdl_stmt_seq *statements = module->v.Module.body;
    Py_ssize_t count = asdl_seq_LEN(statements);
    expr_ty trailing = NULL;
    if (count > 0 && asdl_seq_GET(statements, count - 1)->kind == Expr_kind) {
        trailing = asdl_seq_GET(statements, count - 1)->v.Expr.value;
        count -= 1;
        statements->size = count;
    }
    /* The statements first, as Python would meet their errors first. */
    if (count > 0) {
        body = (PyObject *)_PyAST_Compile(module, filename, &flags, -1, arena);
        if (body == NULL) {
            goto done;
        }
    }
    if (trailing != NULL) {
        mod_ty expression = _PyAST_Expression(trailing, arena);
        if (expression == NULL) {
            goto done;
        }
        last = (PyObject *)_PyAST_Compile(expression, filename, &flags, -1, arena);
        if (last == NULL) {
            goto done;
        }
    }
    result = PyTuple_Pack(2, body ? body : Py_None, last ? last : Py_None);

done:
    Py_XDECREF(body);
    Py_XDECREF(last);
    _PyArena_Free(arena);
    return result;
}

static PyMethodDef compile_split_def = {
    "compile_split",
    (PyCFunction)(void (*)(void))compile_split,
    METH_FASTCALL,
    "compile_split(source, filename) -> (body code or None, trailing expression code or None)",
};

/* A new reference to the `compile_split` function object. */
PyObject *pyeval_compile_split(void)
{
    return PyCFunction_New(&compile_split_def, NULL);
}
