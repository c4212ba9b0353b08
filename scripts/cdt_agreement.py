"""explainreg's contextual decomposition of a tiny BERT against CD-T's vanilla BERT propagation
(Hsu et al. 2024; their HF-BERT example restated: the embedding output split by token, prop_linear
with tol 1e-8, LayerNorm β split by the input parts, ACD's activation rule, normalize_rel_irrel after
each step, attention probabilities from the total). Real decoy-SST sentences, random and briefly
trained weights; prints max|rel_explainreg − rel_CD-T| / max|logit|, the correlation of the true
class's rel across sentences, and CD-T's completeness.

    EXPLAINREG_DATA=../shared/data python scripts/cdt_agreement.py
"""
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from explainreg.hf import HFClassifier
from explainreg.data.text import sst_bias
from explainreg.training.batches import iterate_batches
from explainreg.decomposition import decompose_tokens
torch.set_num_threads(1)


def tiny_bert(vocab):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2, pad_token_id=0)
    return HFClassifier(BertForSequenceClassification(config))


def _train(model, batches, steps=15):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        ids, labels, _ = batches[step % len(batches)]
        opt.zero_grad()
        F.cross_entropy(model(ids), labels).backward()
        opt.step()
    return model.eval()


def norm(r, s):
    tot = r + s; conflict = (r * s) < 0; rd = conflict & (r.abs() >= s.abs()); sd = conflict & ~rd
    r = r.clone(); s = s.clone(); r[rd] = tot[rd]; s[rd] = 0; r[sd] = 0; s[sd] = tot[sd]; return r, s
def lin(r, s, m, tol=1e-8):
    rt, st = r @ m.weight.T, s @ m.weight.T; t = rt.abs() + st.abs() + tol
    return rt + m.bias * rt.abs() / t, st + m.bias * st.abs() / t
def ln(r, s, m, tol=1e-8):
    tot = r + s; vr = tot.var(-1, unbiased=False, keepdim=True)
    w = r.abs() + s.abs() + tol
    f = lambda p: (p - p.mean(-1, keepdim=True)) / torch.sqrt(vr + m.eps) * m.weight
    return f(r) + m.bias * r.abs() / w, f(s) + m.bias * s.abs() / w
def act(r, s, fn):
    sa = fn(s); return fn(r + s) - sa, sa
def cdt(model, ids, mask):
    bert = model.model.bert; emb = bert.embeddings.eval()
    out = emb(input_ids=ids)
    m = mask[..., None]; rel, irrel = m * out, (1 - m) * out
    add = (1.0 - (ids != 0).float()[:, None, None, :]) * torch.finfo(out.dtype).min
    for layer in bert.encoder.layer:
        sa = layer.attention.self; H = sa.num_attention_heads
        h = lambda t: t.view(*t.shape[:2], H, -1).transpose(1, 2)
        tot = rel + irrel
        p = torch.softmax(h(sa.query(tot)) @ h(sa.key(tot)).transpose(-1, -2) * sa.scaling + add, -1)
        rv, sv = lin(rel, irrel, sa.value)
        mg = lambda t: t.transpose(1, 2).reshape(tot.shape)
        rc, sc = norm(mg(p @ h(rv)), mg(p @ h(sv)))
        o = layer.attention.output
        rd, sd = norm(*lin(rc, sc, o.dense)); rt, st = norm(rd + rel, sd + irrel)
        ra, sa_ = norm(*ln(rt, st, o.LayerNorm))
        ri, si = norm(*lin(ra, sa_, layer.intermediate.dense)); ri, si = act(ri, si, layer.intermediate.intermediate_act_fn)
        ro, so = norm(*lin(ri, si, layer.output.dense)); rt, st = norm(ro + ra, so + sa_)
        rel, irrel = norm(*ln(rt, st, layer.output.LayerNorm))
    r, s = act(*lin(rel[:, 0], irrel[:, 0], bert.pooler.dense), bert.pooler.activation)
    return lin(r, s, model.model.classifier)

print("| weights | mask | largest (rel − rel_CD-T) / largest logit | correlation of rel_y over sentences | CD-T: rel + irrel − logit |")
print("|---|---|---|---|---|")
splits = sst_bias("decoy", limit=200)
batches = list(iterate_batches(splits.train, 32, shuffle=False))[:3]
x, y, ex = batches[0]
for w in ("random", "trained"):
    model = tiny_bert(len(splits.vocab))
    if w == "trained": _train(model, batches)
    model.eval()
    with torch.no_grad():
        logits = model(x); scale = logits.abs().max()
        for name, mask in (("decoy token", ex["mask"]), ("first half", (torch.arange(x.shape[1])[None] < ex["lengths"][:, None] / 2).float())):
            r1, s1 = decompose_tokens(model, x, mask)
            r2, s2 = cdt(model, x, mask * (x != 0))
            d = (r1 - r2).abs().max() / scale
            ry1 = r1.gather(1, y[:, None]).squeeze(); ry2 = r2.gather(1, y[:, None]).squeeze()
            corr = torch.corrcoef(torch.stack([ry1, ry2]))[0, 1]
            print(f"| {w} | {name} | {float(d):.2e} | {float(corr):.3f} | {float((r2 + s2 - logits).abs().max() / scale):.1e} |")
