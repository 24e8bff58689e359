/* Force-included (-include edgec_profile.h) into every unit of a profiling build: routes the
 * generated model's EDGEC_LAYER_HOOK(i) to the harness, which records the clock per layer.
 * Without it edgec_model.h defines the hook as empty. */
#ifndef EDGEC_PROFILE_H
#define EDGEC_PROFILE_H

void edgec_profile_hook(int layer);
#define EDGEC_LAYER_HOOK(i) edgec_profile_hook((int)(i))

#endif /* EDGEC_PROFILE_H */
