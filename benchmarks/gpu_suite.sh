#!/usr/bin/env bash
# The GPU checks of the training engine, sized for one 10-minute command on one H100/H200
# (the step limits below add up to 570 s):
#   0. the CUDA fixture: tiny detectors fitted and pickled on the GPU, which tests/
#      test_cuda_fixture.py loads on CPU-only machines (tests/_cuda_fixture.py, at most 90 s);
#   1. images/s of DLSGAN's small networks at batch 32 and 256, paper step and defaults, and
#      host synchronisations per step (gpu_speed.py, at most 3 minutes);
#   2. the tabular and image overhead against a bare PyTorch loop (overhead.py, at most 3 minutes);
#   3. time allowing, the MNIST near/far table on fold 0 with all 60,000 training digits for the
#      paper's 30 epochs, DLSGAN only, small networks (cut off after
#      $MNIST_TIMEOUT seconds, 120 by default).
# Results go to benchmarks/results/ (gpu_speed*, overhead_*cuda*, mnist_ood_gpu_60k30*) and
# tests/fixtures/cuda/; where $OUT names a folder, both are also packed into $OUT/gpu_suite.tar.gz.
# Usage, from the repository root on the GPU machine:  bash benchmarks/gpu_suite.sh
set -uo pipefail
cd "$(dirname "$0")"
export SKOOD_DATA="${SKOOD_DATA:-$(cd ../.. && pwd)/shared/data}"
python3 -c "import skood, skorch, sklearn" 2>/dev/null || python3 -m pip install -q -e .. || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout 90 python3 ../tests/_cuda_fixture.py
timeout 180 python3 gpu_speed.py --device cuda --output gpu_speed
timeout 90 python3 overhead.py --repeats 3 --device cuda --output overhead_cuda_suite
timeout 90 python3 overhead.py --images 6400 --epochs 2 --repeats 2 --device cuda \
    --output overhead_images_cuda_suite
timeout "${MNIST_TIMEOUT:-120}" python3 mnist_ood.py --config cpu --train-size 60000 --epochs 30 --eval-size 10000 \
    --device cuda --models DLSGAN --output mnist_ood_gpu_60k30
if [ -n "${OUT:-}" ]; then
    tar czf "$OUT/gpu_suite.tar.gz" -C .. tests/fixtures/cuda \
        $(cd .. && ls benchmarks/results/gpu_speed* benchmarks/results/*cuda_suite* \
            benchmarks/results/mnist_ood_gpu_60k30* 2>/dev/null)
fi
echo "gpu_suite done"
