// System calls Swift's Glibc module does not show (glibc declares them only for _GNU_SOURCE).
#include <spawn.h>

/// Adds "close every descriptor from `lowest` up" to a spawn's file actions (glibc 2.34+),
/// so a child starts from exactly the descriptors its actions set up.
int coderl_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);
