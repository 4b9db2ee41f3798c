"""Writes test/fixtures/rest-replays.json: the requests of RAG clients that cannot be installed in CI, rebuilt from
their sources (each entry names its file and commit) and serialized as each client does (requests json=/data=json.dumps:
", " and ": " separators; httpx json=: compact, non-ASCII kept). Run: python3 scripts/make_rest_replays.py > test/fixtures/rest-replays.json"""
import json
Q = "What is the capital of the United States?"
DOCS = [
    "Carson City is the capital city of the American state of Nevada.",
    "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific Ocean. Its capital is Saipan.",
    "Washington, D.C. (also known as simply Washington or D.C., and officially as the District of Columbia) is the capital of the United States. It is a federal district.",
    "Capital punishment has existed in the United States since before the United States was a country.",
]
KQ = "Whose kasumi"
KDOCS = ['Kasumi is a girl\'s name of Japanese origin meaning "mist".', "Her music is a kawaii bass, a mix of future bass, pop, and kawaii music ", "and she leads a team named PopiParty."]
requests_dumps = lambda o: json.dumps(o, allow_nan=False)
httpx_dumps = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
fern_v1 = {"content-type": "application/json", "x-fern-language": "Python", "x-fern-sdk-name": "cohere", "x-fern-sdk-version": "5.15.0", "authorization": "Bearer TOKEN", "user-agent": "python-httpx/0.28.1"}
req_h = {"content-type": "application/json", "authorization": "Bearer TOKEN", "user-agent": "python-requests/2.32.3"}
httpx_h = {"content-type": "application/json", "authorization": "Bearer TOKEN", "user-agent": "python-httpx/0.28.1"}
VQ = "What is the capital of the United States?"
VDOCS = ["Carson City is the capital city of the American state of Nevada. At the 2010 United States Census, Carson City had a population of 55,274.", "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific Ocean that are a political division controlled by the United States. Its capital is Saipan."]
LIT_DOCS = [{"title": "Nevada", "body": DOCS[0]}, {"title": "Saipan", "body": DOCS[1]}, {"title": "Washington", "body": DOCS[2]}, {"title": "Punishment", "body": DOCS[3]}]
R = []
def add(client, source, base_url, reqs): R.append({"client": client, "source": source, "base_url": base_url, "requests": reqs})
def rq(method, path, headers, body, expect): 
    d = {"method": method, "path": path, "headers": headers}
    if body is not None: d["body"] = body
    d["expect"] = expect
    return d

add("langchain-cohere CohereRerank (Python; cohere ClientV2 underneath)",
    "langchain-ai/langchain-cohere libs/cohere/langchain_cohere/rerank.py @100cc84b: CohereRerank.rerank calls self.client.rerank(query=, documents=, model=, top_n=, max_tokens_per_doc=self.max_tokens_per_doc), max_tokens_per_doc defaulting to None; cohere-python v2/client.py rerank sends explicit None as null",
    "base_url=http://HOST",
    [rq("POST", "/v2/rerank", {**fern_v1, "x-client-name": "langchain:partner"}, httpx_dumps({"model": "rerank-v3.5", "query": Q, "documents": DOCS, "top_n": 3, "max_tokens_per_doc": None}), {"shape": "cohere", "top_n": 3})])
add("Dify Cohere plugin, credential validation (cohere Python SDK v1 client)",
    "langgenius/dify-official-plugins models/cohere/models/rerank/rerank.py (not in the search index here; rebuilt from the plugin as last read and the cohere SDK v1 rerank signature): validate_credentials → _invoke(top_n=None) → cohere.Client(api_key, base_url=).rerank(query=, documents=, model=, top_n=top_n, return_documents=True); reads result.index, result.document.text, result.relevance_score",
    "base_url=http://HOST (the SDK adds /v1/rerank)",
    [rq("POST", "/v1/rerank", fern_v1, httpx_dumps({"query": Q, "documents": DOCS, "model": "rerank-english-v3.0", "top_n": None, "return_documents": True}), {"shape": "cohere", "document_text": True})])
add("Dify Jina plugin, credential validation",
    "langgenius/dify-official-plugins models/jina/models/rerank/rerank.py @d7095422: validate_credentials → _invoke(top_n=None): httpx.post(base_url + '/rerank', json={'model', 'query', 'documents', 'top_n': top_n, 'return_documents': False}); reads results[].index and results[].relevance_score, the text from its own docs",
    "base_url=http://HOST/v1",
    [rq("POST", "/v1/rerank", {"authorization": "Bearer TOKEN", "content-type": "application/json", "user-agent": "python-httpx/0.28.1"}, httpx_dumps({"model": "jina-reranker-v2-base-multilingual", "query": VQ, "documents": VDOCS, "top_n": None, "return_documents": False}), {"shape": "cohere", "no_documents": True})])
add("Dify OpenAI-API-compatible rerank as the dify_plugin SDK's OAICompatRerankModel has it (the plugin's base class), credential validation",
    "langgenius/dify-plugin-sdks python/dify_plugin/interfaces/model/openai_compatible/rerank.py @1e544b46: validate_credentials → _invoke(top_n=None): requests post(str(URL(endpoint_url) / 'rerank'), data=json.dumps({'model', 'query', 'documents', 'top_n': top_n, 'return_documents': True})); reads results[].relevance_score, index, document.text",
    "endpoint_url=http://HOST/v1",
    [rq("POST", "/v1/rerank", {"authorization": "Bearer TOKEN", "content-type": "application/json", "user-agent": "python-requests/2.32.3"}, requests_dumps({"model": "bge-reranker", "query": VQ, "documents": VDOCS, "top_n": None, "return_documents": True}), {"shape": "cohere", "document_text": True})])
add("Dify OpenAI-API-compatible plugin (current), credential validation",
    "langgenius/dify-official-plugins models/openai_api_compatible/models/rerank/rerank.py @225e44da: requests.post(endpoint_url.rstrip('/') + '/rerank', json={'model', 'query', 'documents', 'top_n': 3}); reads results[].index, results[].relevance_score",
    "endpoint_url=http://HOST/v1",
    [rq("POST", "/v1/rerank", {"content-type": "application/json", "authorization": "Bearer TOKEN", "user-agent": "python-requests/2.32.3"}, requests_dumps({"model": "bge-reranker", "query": VQ, "documents": VDOCS + ["Washington, D.C., formally the District of Columbia, is the capital city and federal district of the United States. It is located on the east bank of the Potomac River."], "top_n": 3}), {"shape": "cohere", "top_n": 3})])
add("Dify Hugging Face TEI plugin: model info, then rerank",
    "langgenius/dify-official-plugins models/huggingface_tei/models/helper.py: TeiHelper._get_tei_extra_parameter GETs server_url/info and reads model_type's first key (must be 'reranker'), max_input_length, max_client_batch_size; invoke_rerank posts {'query', 'texts', 'return_text': True} to server_url/rerank and reads index, text, score",
    "server_url=http://HOST",
    [rq("GET", "/info", {"authorization": "Bearer TOKEN", "user-agent": "python-requests/2.32.3"}, None, {"shape": "tei-info"}),
     rq("POST", "/rerank", httpx_h, httpx_dumps({"query": KQ, "texts": KDOCS, "return_text": True}), {"shape": "tei", "text": True})])
add("Open WebUI external reranker",
    "open-webui/open-webui backend/open_webui/retrieval/models/external.py @0668cb7f: ExternalReranker.predict posts {'model', 'query', 'documents', 'top_n': len(docs)} with requests to the configured URL; sorts results by index and reads relevance_score",
    "RAG_EXTERNAL_RERANKER_URL=http://HOST/v1/rerank",
    [rq("POST", "/v1/rerank", req_h, requests_dumps({"model": "reranker", "query": Q, "documents": DOCS, "top_n": len(DOCS)}), {"shape": "cohere", "all": True})])
add("LiteLLM cohere/ route (Cohere v1), objects with rank_fields",
    "BerriAI/litellm litellm/llms/cohere/rerank/transformation.py @0647d5ba: transform_rerank_request builds RerankRequest(model, query, top_n, documents, rank_fields, return_documents, max_chunks_per_doc).model_dump(exclude_none=True), POSTed to api_base + /v1/rerank; transform_rerank_response reads id, results (index, relevance_score, document), meta",
    "api_base=http://HOST",
    [rq("POST", "/v1/rerank", httpx_h, requests_dumps({"model": "rerank-english-v3.0", "query": Q, "top_n": 3, "documents": LIT_DOCS, "rank_fields": ["body"], "return_documents": True}), {"shape": "cohere", "top_n": 3, "document_object": True})])
add("LiteLLM cohere/ route (Cohere v2)",
    "BerriAI/litellm litellm/llms/cohere/rerank_v2/transformation.py: RerankRequest(...).model_dump(exclude_none=True) with max_tokens_per_doc, POSTed to api_base + /v2/rerank",
    "api_base=http://HOST",
    [rq("POST", "/v2/rerank", httpx_h, requests_dumps({"model": "rerank-v3.5", "query": Q, "top_n": 2, "documents": DOCS, "max_tokens_per_doc": 4096}), {"shape": "cohere", "top_n": 2})])
add("LiteLLM jina_ai/ route",
    "BerriAI/litellm litellm/llms/jina_ai/rerank/transformation.py: {'model', 'query', 'documents', 'top_n', 'return_documents'} without None values, POSTed to api_base (…/v1/rerank); reads id, results, usage.total_tokens",
    "api_base=http://HOST/v1/rerank",
    [rq("POST", "/v1/rerank", httpx_h, requests_dumps({"model": "jina-reranker-v2-base-multilingual", "query": Q, "documents": DOCS, "top_n": 3, "return_documents": True}), {"shape": "cohere", "top_n": 3, "document_text": True, "usage": True})])
add("LiteLLM huggingface/ route (TEI)",
    "BerriAI/litellm litellm/llms/huggingface/rerank/transformation.py @0647d5ba: transform_rerank_request sends {'raw_scores': False, 'truncate': False, 'truncation_direction': 'Right'} updated with query, texts, top_n, return_text to api_base + /rerank; reads index, score and (return_text) text",
    "api_base=http://HOST",
    [rq("POST", "/rerank", {"accept": "application/json", "content-type": "application/json", "Authorization": "Bearer TOKEN", "user-agent": "litellm/1.77.0"}, requests_dumps({"raw_scores": False, "truncate": False, "truncation_direction": "Right", "query": Q, "texts": DOCS, "top_n": 3, "return_text": True}), {"shape": "tei", "text": True})])
RR_H = {"accept": "application/json", "content-type": "application/json", "Authorization": "Bearer TOKEN", "user-agent": "python-requests/2.32.3"}
add("rerankers (AnswerDotAI) APIRanker, api_provider cohere with a custom url",
    "AnswerDotAI/rerankers rerankers/models/api_rankers.py @3aa3a6ed: _format_payload json.dumps({'model', 'query', 'documents', 'top_n': len(docs), 'return_documents': True}) posted with data= to url; reads results[].index, results[].relevance_score",
    "url=http://HOST/v1/rerank",
    [rq("POST", "/v1/rerank", RR_H, requests_dumps({"model": "rerank-english-v3.0", "query": Q, "documents": DOCS, "top_n": len(DOCS), "return_documents": True}), {"shape": "cohere", "all": True, "document_text": True})])
add("rerankers (AnswerDotAI) APIRanker, api_provider text-embeddings-inference",
    "AnswerDotAI/rerankers rerankers/models/api_rankers.py @3aa3a6ed: documents key 'texts', return key 'return_text', results are the bare list; reads [].index, [].score",
    "url=http://HOST/rerank",
    [rq("POST", "/rerank", RR_H, requests_dumps({"model": "bge-reranker", "query": Q, "texts": DOCS, "top_n": len(DOCS), "return_text": True}), {"shape": "tei", "text": True})])
add("LlamaIndex CohereRerank postprocessor (Python)",
    "run-llama/llama_index llama-index-integrations/postprocessor/llama-index-postprocessor-cohere-rerank/llama_index/postprocessor/cohere_rerank/base.py: self._client.rerank(model=, top_n=, query=, documents=texts) with cohere.Client(api_key=, base_url=); reads result.index, result.relevance_score",
    "base_url=http://HOST",
    [rq("POST", "/v1/rerank", fern_v1, httpx_dumps({"query": Q, "documents": DOCS, "model": "rerank-english-v3.0", "top_n": 2}), {"shape": "cohere", "top_n": 2})])
add("LlamaIndex TextEmbeddingInference rerank postprocessor (Python)",
    "run-llama/llama_index llama-index-integrations/postprocessor/llama-index-postprocessor-tei-rerank/llama_index/postprocessor/tei_rerank/base.py @18b5f1b4: _call_api posts {'query', 'texts'} with httpx json= to base_url + /rerank, Authorization = auth_token as given; asserts one score per node, reads [].index, [].score",
    "base_url=http://HOST, auth_token='Bearer <token>'",
    [rq("POST", "/rerank", {"content-type": "application/json", "authorization": "Bearer TOKEN", "user-agent": "python-httpx/0.28.1"}, httpx_dumps({"query": Q, "texts": DOCS}), {"shape": "tei"})])
print(json.dumps({"note": "Made by scripts/make_rest_replays.py. Requests of RAG clients that cannot be installed here, rebuilt from their sources (see each source) with the serializer each uses: requests json= (', ' and ': ' separators), httpx json= (compact, ensure_ascii off). TOKEN is replaced by the test's token; bodies are sent byte for byte.", "replays": R}, indent=2, ensure_ascii=False))
