/* dist_env.c: whether a launcher started this process, read from the variables each launcher
 * sets: OpenMPI's mpirun, a PMI/PMIx launcher (MPICH's hydra, Slurm with --mpi=pmi2/pmix) and
 * Slurm's srun itself. Both the MPI and the no-MPI build ask it. */
#include "runtime/dist.h"

#include <stdlib.h>

int zn_dist_env_size(const char **launcher)
{
    static const char *const vars[][2] = {
        {"OMPI_COMM_WORLD_SIZE", "mpirun (OpenMPI)"},
        {"PMI_SIZE", "a PMI launcher"},
        {"PMIX_SIZE", "a PMIx launcher"},
        {"SLURM_STEP_NUM_TASKS", "srun (Slurm)"},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i][0]);
        if (!v || !*v) continue;
        *launcher = vars[i][1];
        return atoi(v);
    }
    *launcher = NULL;
    return -1;
}
