"""The heads' export forms compute what training computed (torch, build time only)."""
import pytest

torch = pytest.importorskip("torch")
heads = pytest.importorskip("models.heads")


def _reference_spans(h, n_content, size=heads.SPAN_TOKENS, stride=heads.SPAN_STRIDE):
    """Span means by hand: content tokens are positions 1..n_content of a row that starts with [CLS]."""
    out = []
    for k in range(h.shape[0] // stride + 1):
        pos = [p for p in range(k * stride, k * stride + size) if 1 <= p <= n_content]
        if len(pos) >= min(stride, n_content) and pos:
            out.append(h[pos].mean(0))
    return torch.stack(out) if out else torch.zeros(0, h.shape[1])


@pytest.mark.parametrize("n_content", [1, 5, 6, 11, 12, 13, 50, 126])
def test_span_means_are_the_means_of_content_tokens_and_ignore_padding(n_content):
    torch.manual_seed(n_content)
    S = n_content + 2
    h = torch.randn(2, S + 9, 8)
    mask = torch.zeros(2, S + 9, dtype=torch.int64)
    mask[0, :S] = 1                 # row 0: padded in a batch beside a longer row 1
    mask[1, :] = 1
    spans, valid = heads.span_means(h, mask)
    alone, valid_alone = heads.span_means(h[:1, :S], mask[:1, :S])
    assert torch.allclose(spans[0][valid[0]], _reference_spans(h[0, :S], n_content), atol=1e-6)
    assert torch.allclose(spans[0][valid[0]], alone[0][valid_alone[0]], atol=1e-6)


def test_the_pii_heads_export_copy_folds_its_standardization_and_keeps_its_logits():
    torch.manual_seed(0)
    head = heads.TokHead(n_tags=5, in_dim=24).eval()
    head.norm.mu.normal_()
    head.norm.sd.uniform_(0.5, 2.0)
    x = torch.randn(3, 17, 24)
    folded = head.folded().eval()
    assert isinstance(folded.norm, torch.nn.Identity)
    with torch.no_grad():
        assert torch.allclose(head(x), folded(x), atol=1e-5)
    assert isinstance(head.norm, heads.Standardize)  # the trained head itself is untouched
