# Container images (needs docker or a compatible builder). The tests and the local
# mode (`plato-sedna run`) need no image: see README.md.
IMAGE ?= plato-sedna:0.1.0
GPU_INDEX ?= https://download.pytorch.org/whl/cu124

.PHONY: image image-gpu demo-images

image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

image-gpu:
	docker build -f deploy/Dockerfile -t $(IMAGE)-gpu --build-arg TORCH_INDEX_URL=$(GPU_INDEX) .

demo-images: image
	for demo in demos/*/; do \
	  if [ -f $$demo/Dockerfile ]; then docker build -t plato-sedna-$$(basename $$demo):0.1.0 $$demo; fi; \
	done
