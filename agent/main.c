/* albd: command-line entry point. */
#include "agent/cli.h"

int main(int argc, char **argv)
{
    return ag_cli_main(argc, argv);
}
