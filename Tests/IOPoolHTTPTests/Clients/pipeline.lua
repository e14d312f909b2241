-- wrk: each connection writes 16 GET /plaintext requests at once and waits for their 16
-- responses (RealClientLoadTests). wrk counts each response, so requests = 16 x batches.
init = function(args)
    local requests = {}
    for index = 1, 16 do
        requests[index] = wrk.format("GET", "/plaintext")
    end
    batch = table.concat(requests)
end

request = function()
    return batch
end
