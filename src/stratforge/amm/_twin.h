/*
 * Native twins of Solidity strategy families (_frontier_twin.c): the seam with the market loop in
 * _core.c. A twin instance is a Python object of type FrontierTwin; the core recognises it and runs
 * afterSwap without leaving C, like an EvmMachine, but without interpreting bytecode.
 */
#ifndef STRATFORGE_TWIN_H
#define STRATFORGE_TWIN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Adds the FrontierTwin type and the TwinOutOfRange exception to the module. */
int twin_add_to_module(PyObject *module);

/* Whether `o` is a FrontierTwin. */
int twin_is(PyObject *o);

/* One afterSwap on the twin's state (inputs as the core encodes them into calldata: values below
 * 2^128). Returns 1 with *bid / *ask set (state committed), 0 when the contract would fail the call
 * (state kept, as a reverted transaction), -1 with TwinOutOfRange set when the call leaves what the
 * twin models exactly (the simulation must then be run by the EVM). */
int twin_after_swap(PyObject *twin, int is_buy, unsigned __int128 amount_x, unsigned __int128 amount_y,
                    uint64_t timestamp, unsigned __int128 reserve_x, unsigned __int128 reserve_y, int64_t *bid,
                    int64_t *ask);

#endif
