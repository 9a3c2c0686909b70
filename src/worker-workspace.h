/*
 * worker-workspace.h: a workspace as worker-workspace.c (its life) and
 * worker-workspace-destroy.c (listing and ending it) share it.
 */
#ifndef WORKER_WORKSPACE_H
#define WORKER_WORKSPACE_H

struct workspace {
	int		 refs;
	int		 dead;		/* destroyed: lookups miss it */
	char		 name[WORKER_ID_MAX + 1];
	json_t		*owner;		/* {"uid":N,"controller":ID} */
	int		 slot;
	int		 slotfd;	/* its registry file, locked */
	char		*folder;	/* STATE/ID/workspaces/SLOT */
	char		 created[32];
	int		 host_network;
	uint64_t	 memory;	/* 0: no limit */
	int		 pids;
	double		 cpu;
	uint64_t	 disk;		/* 0: a folder, no bound */
	int		 loopfd;	/* its loop device, held */
	char		*loopdev;
	json_t		*env;
	struct cgroup	*cg;
	struct cgroup	*initcg;	/* the init's own: tracked, no limits */
	struct ns_init	 init;
	TAILQ_ENTRY(workspace) entry;
};
TAILQ_HEAD(ws_list, workspace);
extern struct ws_list workspaces;

/* worker-workspace.c */
void	 ws_rmtree(const char *);
char	*ws_disk_path(struct workspace *);
int	 ws_disk_attach(struct workspace *, char **);
void	 ws_disk_detach(struct workspace *);
struct workspace *ws_find(const char *, json_t *);
void	 ws_stop(struct workspace *);

/* worker-workspace-destroy.c */
void	 ws_destroy_flush(void);

#endif
