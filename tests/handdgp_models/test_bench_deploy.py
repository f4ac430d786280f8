"""bench_deploy: the timed call is the whole predict path, and the table prints every row."""

import numpy as np
import torch

from benchmarks import bench_deploy


def test_end_to_end_call_matches_the_predictor_path(tmp_path):
    run, network, deployed = bench_deploy._setup("tiny", tmp_path)
    K = np.array([[300.0, 0, 320], [0, 300.0, 240], [0, 0, 1]], np.float32)
    box = np.array([330.0, 230.0, 150.0], np.float32)
    jpegs = bench_deploy._jpegs(2)
    joints, verts = bench_deploy._end_to_end(run.pipeline(train=False), deployed, jpegs, K,
                                              box)()
    assert joints.shape == (2, 21, 3) and verts.shape == (2, 778, 3)
    # the same as running the pipeline and the network on the decoded image by hand
    import cv2

    image = cv2.imdecode(np.frombuffer(jpegs[1], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    x = run.pipeline(train=False)({"image": image, "K": K, "box": box})
    with torch.no_grad():
        out = network(x["image"][None], x["K"][None], x["R"][None])
    np.testing.assert_allclose(verts[1], out["verts_orig"][0].numpy(), rtol=1e-5, atol=1e-5)


def test_table_has_a_row_per_measurement():
    rows = [{"config": "small", "batch": b, "method": m, "call": 0.01 * b, "per_image": 0.01,
             "vs_eager": 1.0, "build": None if m == "eager" else 30.0}
            for b in (1, 8) for m in ("eager", "torch.compile", "AOTInductor")]
    table = bench_deploy.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and "AOTInductor" in table[-1] and "30 s" in table[-1]
