/* `albd plan`: what applying a manifest folder would change, against a
 * running albd, a saved /config document, or nothing. */
#ifndef ALBD_AGENT_PLAN_CMD_H
#define ALBD_AGENT_PLAN_CMD_H

/* `albd plan -m DIR [--against URL|--state FILE] [-o text|json]`: prints
 * what applying DIR would change. Exit 0 no changes, 2 changes, 1 error
 * (Terraform's -detailed-exitcode convention), 64 usage error. argv[0] is "plan". */
int ag_plan_main(int argc, char **argv);

/* The text of `albd plan --help`. */
extern const char ag_plan_usage[];

#endif
