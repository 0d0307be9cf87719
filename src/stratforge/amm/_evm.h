/*
 * The EVM of the simulation core (_evm.c): the seam between the market loop in _core.c and the
 * interpreter. A strategy instance is a Python object of type EvmMachine (subclassed in evm.py);
 * the core recognises it and runs afterSwap without leaving C.
 */
#ifndef STRATFORGE_EVM_H
#define STRATFORGE_EVM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Adds the EvmMachine type and the test helpers (keccak256, u256_op) to the module. */
int evm_add_to_module(PyObject *module);

/* Whether `o` is an EvmMachine (or a subclass instance). */
int evm_is_machine(PyObject *o);

/* Runs one afterSwap with ready calldata under the 250k hook limit, commits storage on success
 * and decodes the fee pair. Returns 1 with *bid / *ask set, 0 when the hook failed (the failure
 * kind is counted in the machine), -1 when a Python error must abort the simulation. */
int evm_after_swap(PyObject *machine, const unsigned char *calldata, size_t n, int64_t *bid, int64_t *ask);

/* The engine's rule for a hook's return data: two ABI words, each at most MAX_FEE (1e17).
 * Returns FEES_OK with *bid / *ask set, FEES_MALFORMED (fewer than 64 bytes) or FEES_ABOVE_MAX. */
enum { FEES_OK = 0, FEES_MALFORMED = 1, FEES_ABOVE_MAX = 2 };
int decode_fee_pair(const unsigned char *data, size_t n, int64_t *bid, int64_t *ask);

/* Calls that had to run in pyrevm because they reached something this EVM does not implement. */
long evm_fallback_calls(PyObject *machine);

#endif
