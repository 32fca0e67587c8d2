//! Shared libraries: `--func 'OBJECT:FUNC'` names functions of any ELF object mapped into the
//! target (`libc.so.6:malloc`), a glob on the object's file name, a colon, a glob on the function.
