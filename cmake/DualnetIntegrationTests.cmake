# Tests outside the C++ suite, run by the same ctest: the Python analysis package against
# real runs, the Slurm job scripts on a real one-node cluster, and shellcheck.
set(DUALNET_VENV ${CMAKE_SOURCE_DIR}/.venv CACHE PATH "Python venv with the analysis package (cmake/setup-debian.sh)")

if(EXISTS ${DUALNET_VENV}/bin/pytest)
  add_test(NAME analysis.pytest
    COMMAND ${DUALNET_VENV}/bin/pytest -q ${CMAKE_SOURCE_DIR}/analysis/tests)
  set_tests_properties(analysis.pytest PROPERTIES
    ENVIRONMENT "DUALNET_BIN=$<TARGET_FILE:dualnet>" LABELS "analysis" TIMEOUT 900 PROCESSORS 2)
else()
  # Not skipped silently: a missing venv is a set-up error the test run must show.
  add_test(NAME analysis.pytest COMMAND sh -c
    "echo 'no ${DUALNET_VENV}/bin/pytest: run cmake/setup-debian.sh, then reconfigure' >&2; exit 1")
endif()

if(EXISTS ${CMAKE_SOURCE_DIR}/tests/slurm/test_slurm.sh)
  add_test(NAME slurm.jobs COMMAND bash ${CMAKE_SOURCE_DIR}/tests/slurm/test_slurm.sh)
  set_tests_properties(slurm.jobs PROPERTIES
    ENVIRONMENT "DUALNET_BIN=$<TARGET_FILE:dualnet>" LABELS "slurm" TIMEOUT 900 SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/slurm/test_shellcheck.sh)
  add_test(NAME shellcheck COMMAND bash ${CMAKE_SOURCE_DIR}/tests/slurm/test_shellcheck.sh)
  set_tests_properties(shellcheck PROPERTIES LABELS "lint" SKIP_RETURN_CODE 77)
endif()

# Command-line behaviour of the real binary: exact restart, rank-count invariance, bad input.
string(REPLACE ";" " " _dualnet_mpiexec "${MPIEXEC_EXECUTABLE};${MPIEXEC_PREFLAGS}")
set(_dualnet_cli_env
  "DUALNET_BIN=$<TARGET_FILE:dualnet>;DUALNET_MPIEXEC=${_dualnet_mpiexec};DUALNET_PYTHON=${DUALNET_VENV}/bin/python")
foreach(_t restart rank_invariance)
  add_test(NAME cli.${_t} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/cli/test_${_t}.sh)
  set_tests_properties(cli.${_t} PROPERTIES ENVIRONMENT "${_dualnet_cli_env}" LABELS "cli;mpi" TIMEOUT 900 PROCESSORS 2)
endforeach()
# Signals (SIGKILL, SIGUSR1) are the restart test's class of fault.
set_property(TEST cli.restart APPEND PROPERTY LABELS "integrity;signals")

# Integrity: one script per class of fault (tests/integrity/); a new case is one line.
foreach(_class values config_files paths checkpoints bitflip disk readers concurrency)
  add_test(NAME integrity.${_class} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integrity/${_class}.sh)
  set_tests_properties(integrity.${_class} PROPERTIES ENVIRONMENT "${_dualnet_cli_env}"
    LABELS "integrity;cli;${_class}" TIMEOUT 900 PROCESSORS 2 SKIP_RETURN_CODE 77)
endforeach()

# Sweeps without Slurm: `jobs/sweep.py run` with the real binary (tests/sweep/).
add_test(NAME sweep.local COMMAND bash ${CMAKE_SOURCE_DIR}/tests/sweep/test_local_sweep.sh)
set_tests_properties(sweep.local PROPERTIES
  ENVIRONMENT "DUALNET_BIN=$<TARGET_FILE:dualnet>;DUALNET_MPIEXEC=${_dualnet_mpiexec}"
  LABELS "sweep" TIMEOUT 600 PROCESSORS 2)
