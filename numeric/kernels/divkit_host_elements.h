/* divkit_host_elements.h — the element terms of a block of a from-logits row on the host
 * (double), vectorised: for element X (loss, gs, gt, ngs, ngt) the loop evaluates the lo
 * form where ell <= 0 and the hi form where ell > 0, and the Taylor polynomial where |ell|
 * is below the series radius, lane by lane (both branches computed, one selected: no
 * branch, so that the loop vectorises with the vector math library); an element whose
 * value is not finite (a -inf logit, an overflow, 0 * inf) is then evaluated by the careful
 * scalar term of divkit_elements.h, which starts with the same forms. Needs the f64
 * instantiation of divkit_common.h, the forms and divkit_elements.h. */

/* one function per element: divkit_host_block.h instantiated with DK_X (the element's
   name) and DK_X_OFF (its cst block) */
#define DK_X loss
#define DK_X_OFF DK_CST_LOSS
#include "divkit_host_block.h"
#define DK_X gs
#define DK_X_OFF DK_CST_GS
#include "divkit_host_block.h"
#define DK_X gt
#define DK_X_OFF DK_CST_GT
#include "divkit_host_block.h"
#define DK_X ngs
#define DK_X_OFF DK_CST_NGS
#include "divkit_host_block.h"
#define DK_X ngt
#define DK_X_OFF DK_CST_NGT
#include "divkit_host_block.h"

